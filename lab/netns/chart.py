"""The picture: per case, packets delivered per 100 ms in each direction (by the time each
was sent), the event and opergroupd's Sets marked."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BIN_MS = 100


def series(direction, rate):
    bins = [0] * (direction["sent"] * 1000 // rate // BIN_MS)
    for _, sent_us in direction["received"]:
        b = sent_us // 1000 // BIN_MS
        if 0 <= b < len(bins):
            bins[b] += 1
    scale = 1000 / BIN_MS
    return [i * BIN_MS / 1000 for i in range(len(bins))], [n * scale for n in bins]


def draw(report, path):
    cases = report["cases"]
    rate = report["rate_pps"]
    fig, axes = plt.subplots(len(cases), 1, figsize=(8, 1.7 * len(cases) + 0.6), sharex=True, squeeze=False)
    for ax, c in zip(axes[:, 0], cases):
        for key, label, color in (("client2_to_client1", "client2 → client1", "tab:blue"),
                                  ("client1_to_client2", "client1 → client2", "tab:orange")):
            x, y = series(c[key], rate)
            ax.step(x, y, where="post", color=color, lw=1.2, label=f"{label}: {c[key]['lost']} lost")
        ax.axvline(c["event_at_ms"] / 1000, color="black", ls="--", lw=1)
        for s in c["downlink_sets"]:
            ax.axvline(s["at_ms"] / 1000, color="tab:green" if s["enable"] else "tab:red", lw=1)
        ax.set_title(f"{c['case']}. {c['title']}", fontsize=9, loc="left")
        ax.set_ylim(0, rate * 1.15)
        ax.set_ylabel("pkt/s", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="lower left")
    axes[-1, 0].set_xlabel(
        "seconds into the window (dashed: the event; red/green: opergroupd's Set disable/enable applied on leaf1)",
        fontsize=8)
    fig.suptitle(f"Real fabric (FRR + Linux VXLAN, OVS active-backup client), {rate} pps each way", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
