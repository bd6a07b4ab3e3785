//! The fake Lease API keeps the promises the election tests rely on (it is not a real
//! API server; see tests/support/fake_lease_api.rs).

#[path = "support/fake_lease_api.rs"]
mod fake_lease_api;

use fake_lease_api::{FakeLeaseApi, Reach, holder};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;

fn lease(name: &str) -> Lease {
    Lease { metadata: ObjectMeta { name: Some(name.into()), ..Default::default() }, spec: Some(LeaseSpec::default()) }
}

fn api_error(err: kube::Error) -> (u16, String) {
    match err {
        kube::Error::Api(status) => (status.code, status.reason),
        other => panic!("expected an API error, got {other}"),
    }
}

#[tokio::test]
async fn resource_version_increments_and_a_stale_update_gets_409() {
    let fake = FakeLeaseApi::new();
    let api: Api<Lease> = Api::namespaced(fake.client("c").await, "ns");

    let err = api.get("l").await.expect_err("absent");
    assert_eq!(api_error(err), (404, "NotFound".into()));

    let created = api.create(&PostParams::default(), &lease("l")).await.expect("create");
    let rv1 = created.metadata.resource_version.clone().expect("rv");
    let err = api.create(&PostParams::default(), &lease("l")).await.expect_err("exists");
    assert_eq!(api_error(err), (409, "AlreadyExists".into()));

    let mut changed = created.clone();
    changed.spec = Some(LeaseSpec { holder_identity: Some("a".into()), ..Default::default() });
    let replaced = api.replace("l", &PostParams::default(), &changed).await.expect("replace");
    let rv2 = replaced.metadata.resource_version.clone().expect("rv");
    assert_ne!(rv1, rv2);

    // `changed` still carries rv1: stale.
    changed.spec = Some(LeaseSpec { holder_identity: Some("b".into()), ..Default::default() });
    let err = api.replace("l", &PostParams::default(), &changed).await.expect_err("stale");
    assert_eq!(api_error(err), (409, "Conflict".into()));
    assert_eq!(holder(&api.get("l").await.expect("get")), Some("a"));
}

#[tokio::test]
async fn server_side_apply_conflicts_on_a_field_owned_by_another_manager() {
    let fake = FakeLeaseApi::new();
    let api: Api<Lease> = Api::namespaced(fake.client("c").await, "ns");
    api.create(&PostParams::default(), &lease("l")).await.expect("create");
    let take = |who: &str| {
        Patch::Apply(json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "spec": {"holderIdentity": who, "leaseDurationSeconds": 2}}))
    };

    api.patch("l", &PatchParams::apply("m1"), &take("a")).await.expect("first apply");
    let err = api.patch("l", &PatchParams::apply("m2"), &take("b")).await.expect_err("owned by m1");
    assert_eq!(api_error(err), (409, "Conflict".into()));
    assert_eq!(holder(&api.get("l").await.expect("get")), Some("a"));

    // The owner itself may change it; a merge patch that clears it frees it for others.
    api.patch("l", &PatchParams::apply("m1"), &take("a2")).await.expect("owner re-applies");
    let clear = Patch::Strategic(json!({"spec": {"holderIdentity": null}}));
    api.patch("l", &PatchParams { field_manager: Some("m3".into()), ..Default::default() }, &clear)
        .await
        .expect("clear");
    api.patch("l", &PatchParams::apply("m2"), &take("b")).await.expect("free now");
    assert_eq!(holder(&api.get("l").await.expect("get")), Some("b"));

    let forced = api.patch("l", &PatchParams::apply("m1").force(), &take("a")).await.expect("force");
    assert_eq!(holder(&forced), Some("a"));
    assert!(fake.history().len() >= 5, "every accepted write is recorded");
}

#[tokio::test]
async fn a_refused_client_gets_500_while_others_are_served() {
    let fake = FakeLeaseApi::new();
    let a: Api<Lease> = Api::namespaced(fake.client("a").await, "ns");
    let b: Api<Lease> = Api::namespaced(fake.client("b").await, "ns");
    a.create(&PostParams::default(), &lease("l")).await.expect("create");
    fake.set_reach("a", Reach::Refuse);
    let err = a.get("l").await.expect_err("refused");
    assert_eq!(api_error(err), (500, "InternalError".into()));
    b.get("l").await.expect("b still served");
    fake.set_reach("a", Reach::Up);
    a.get("l").await.expect("a served again");
}
