//! Workflows: chains, groups, chords and their cancellation.

use serde_json::json;

use super::*;

pub(crate) fn chain_passes_previous_and_a_dead_step_stops_it(b: &dyn Broker, _clock: &ManualClock) {
    let steps = vec![
        job("normal", json!({"x": 1})),
        job("validation", json!({"y": 2})),
        job("normal", json!({"z": 3})),
    ];
    let (_wf, ids) = b.enqueue_workflow(&Workflow::Chain(steps)).expect("chain");
    assert_eq!(ids.len(), 3);
    assert_eq!(state(b, ids[1]), JobState::Waiting);
    let qs = weights(&[("normal", 1), ("validation", 1)]);
    let first = lease_from(b, &w("w1"), &qs, 10);
    assert_eq!(first.iter().map(|l| l.id).collect::<Vec<_>>(), vec![ids[0]]);
    succeed(b, "w1", ids[0], json!("r0"));
    let second = lease_from(b, &w("w1"), &qs, 10);
    assert_eq!(
        second.iter().map(|l| l.id).collect::<Vec<_>>(),
        vec![ids[1]]
    );
    assert_eq!(second[0].payload, json!({"y": 2, "previous": "r0"}));
    fail(b, "w1", ids[1], None);
    assert_eq!(
        state(b, ids[2]),
        JobState::Cancelled,
        "a dead step cancels the rest"
    );
    assert!(lease_from(b, &w("w1"), &qs, 10).is_empty());
}

pub(crate) fn chord_callback_gets_results_in_member_order(b: &dyn Broker, _clock: &ManualClock) {
    let group: Vec<NewJob> = (0..3).map(|i| job("normal", json!({ "i": i }))).collect();
    let callback = job("background", json!({"cb": true}));
    let (_wf, ids) = b
        .enqueue_workflow(&Workflow::Chord { group, callback })
        .expect("chord");
    assert_eq!(ids.len(), 4);
    let got = lease(b, "w1", "normal", 10);
    assert_eq!(got.len(), 3);
    assert!(
        lease(b, "w1", "background", 10).is_empty(),
        "the callback waits"
    );
    // Finish out of order: the results still come in member order.
    for &i in &[2usize, 0, 1] {
        succeed(b, "w1", ids[i], json!(format!("r{i}")));
    }
    let cb = lease(b, "w1", "background", 10);
    assert_eq!(cb.len(), 1);
    assert_eq!(cb[0].id, ids[3]);
    assert_eq!(
        cb[0].payload,
        json!({"cb": true, "results": ["r0", "r1", "r2"]})
    );
    // A chord whose member dies never calls back.
    let group = vec![job("normal", json!(1)), job("normal", json!(2))];
    let (_wf, ids) = b
        .enqueue_workflow(&Workflow::Chord {
            group,
            callback: job("background", json!({})),
        })
        .expect("chord");
    for l in lease(b, "w1", "normal", 10) {
        fail(b, "w1", l.id, None);
    }
    assert_eq!(state(b, ids[2]), JobState::Cancelled);
}

pub(crate) fn group_runs_in_parallel(b: &dyn Broker, _clock: &ManualClock) {
    let group: Vec<NewJob> = (0..4).map(|i| job("normal", json!(i))).collect();
    let (_wf, ids) = b.enqueue_workflow(&Workflow::Group(group)).expect("group");
    let mut got: Vec<JobId> = lease(b, "w1", "normal", 10).iter().map(|l| l.id).collect();
    got.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(got, want);
    for id in ids {
        succeed(b, "w1", id, json!(null));
        assert_eq!(state(b, id), JobState::Succeeded);
    }
}

pub(crate) fn cancel_workflow_cancels_every_unfinished_job(b: &dyn Broker, _clock: &ManualClock) {
    let steps: Vec<NewJob> = (0..3).map(|i| job("normal", json!(i))).collect();
    let (wf, ids) = b.enqueue_workflow(&Workflow::Chain(steps)).expect("chain");
    let got = lease(b, "w1", "normal", 10);
    succeed(b, "w1", got[0].id, json!("r0"));
    assert_eq!(b.cancel_workflow(wf).expect("cancel"), 2);
    assert_eq!(state(b, ids[0]), JobState::Succeeded);
    assert_eq!(state(b, ids[1]), JobState::Cancelled);
    assert_eq!(state(b, ids[2]), JobState::Cancelled);
    assert!(lease(b, "w1", "normal", 10).is_empty());
}
