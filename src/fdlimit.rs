//! The open-file limit. Every target holds a TCP connection (two while the Set channel is
//! separate), so 10,000 targets need more than 20,000 descriptors, far above the usual
//! soft limit of 1024. The process raises its own soft limit to the hard limit (always
//! allowed), and the hard limit too when that is still short and it may (CAP_SYS_RESOURCE,
//! up to fs.nr_open); otherwise the caller logs what is missing.

/// Raises RLIMIT_NOFILE towards `want`. Returns the soft limit in force afterwards;
/// `Err` names what failed (the limit stays as it was).
pub fn raise(want: u64) -> Result<u64, String> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(format!("getrlimit(RLIMIT_NOFILE): {}", std::io::Error::last_os_error()));
    }
    if lim.rlim_cur >= want {
        return Ok(lim.rlim_cur);
    }
    if lim.rlim_max < want {
        // Only a privileged process may raise the hard limit; try, then fall back.
        let higher = libc::rlimit { rlim_cur: want, rlim_max: want };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &higher) } == 0 {
            return Ok(want);
        }
    }
    let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(format!("setrlimit(RLIMIT_NOFILE, {}): {}", lim.rlim_max, std::io::Error::last_os_error()));
    }
    Ok(lim.rlim_max)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_limit_reaches_what_is_asked_or_the_hard_limit() {
        let mut before = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: reads into the struct.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut before) };
        let got = super::raise(before.rlim_cur + 1).expect("raising the soft limit is always allowed");
        let mut after = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: reads into the struct.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut after) };
        assert_eq!(got, after.rlim_cur);
        assert!(after.rlim_cur > before.rlim_cur || after.rlim_cur == before.rlim_max, "{before:?} -> {after:?}");
        // Asking for less than what is in force changes nothing.
        assert_eq!(super::raise(1).unwrap(), after.rlim_cur);
    }
}
