//! Reading the engine's answers: a container's status and address from its inspect answer, and
//! CPU and memory use from its stats stream (the task [`sample_stats`] keeps the latest sample).

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum, ContainerStatsResponse};
use bollard::query_parameters::StatsOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;

use super::{InstanceStatus, Stats};

/// How a container is doing, from its inspect answer.
pub(super) fn status_of(info: &ContainerInspectResponse) -> InstanceStatus {
    let Some(state) = info.state.as_ref() else {
        return InstanceStatus::Exited { code: -1 };
    };
    if state.paused == Some(true) {
        return InstanceStatus::Stopped;
    }
    match state.status {
        Some(ContainerStateStatusEnum::RUNNING) | Some(ContainerStateStatusEnum::RESTARTING) => {
            InstanceStatus::Running
        }
        Some(ContainerStateStatusEnum::PAUSED) => InstanceStatus::Stopped,
        // Created but not started: the start failed after create; a start error is reported
        // by `start` itself, so this reads as gone.
        _ => {
            let code = state
                .exit_code
                .and_then(|c| i32::try_from(c).ok())
                .unwrap_or(-1);
            if state.oom_killed == Some(true) {
                InstanceStatus::Signalled { signal: 9 }
            } else if (129..=192).contains(&code) {
                InstanceStatus::Signalled { signal: code - 128 }
            } else {
                InstanceStatus::Exited { code }
            }
        }
    }
}

/// The container's address on `network`.
pub(super) fn address_on(info: &ContainerInspectResponse, network: &str) -> Option<IpAddr> {
    info.network_settings
        .as_ref()?
        .networks
        .as_ref()?
        .get(network)?
        .ip_address
        .as_deref()?
        .parse()
        .ok()
}

/// Resident memory as `docker stats` counts it: usage less the inactive page cache.
fn memory_of(s: &ContainerStatsResponse) -> u64 {
    let Some(m) = s.memory_stats.as_ref() else {
        return 0;
    };
    let usage = m.usage.unwrap_or(0);
    let cache = m
        .stats
        .as_ref()
        .and_then(|st| {
            st.get("total_inactive_file")
                .or_else(|| st.get("inactive_file"))
        })
        .copied()
        .unwrap_or(0);
    usage.saturating_sub(cache)
}

/// (container CPU ns, system CPU ns, online CPUs) of a stats sample's `cpu_stats`.
fn cpu_of(s: &ContainerStatsResponse) -> Option<(u64, u64, u32)> {
    let c = s.cpu_stats.as_ref()?;
    let total = c.cpu_usage.as_ref()?.total_usage?;
    let system = c.system_cpu_usage?;
    let online = c
        .online_cpus
        .filter(|&n| n > 0)
        .or_else(|| {
            c.cpu_usage
                .as_ref()
                .and_then(|u| u.percpu_usage.as_ref())
                .and_then(|p| u32::try_from(p.len()).ok())
        })
        .unwrap_or(1);
    Some((total, system, online))
}

/// Follows the engine's stats stream of container `id` (one sample a second, each with the
/// previous one as `precpu_stats`) and keeps the latest CPU and memory use in `into`. Ends with
/// the stream (the container stopped) or when aborted (the container was removed).
pub(super) async fn sample_stats(docker: Docker, id: String, into: Arc<Mutex<Stats>>) {
    let opts = StatsOptionsBuilder::new().stream(true).build();
    let mut stream = docker.stats(&id, Some(opts));
    while let Some(Ok(sample)) = stream.next().await {
        let memory_bytes = memory_of(&sample);
        let pre = sample
            .precpu_stats
            .as_ref()
            .and_then(|p| Some((p.cpu_usage.as_ref()?.total_usage?, p.system_cpu_usage?)))
            .filter(|&(_, system)| system > 0);
        let cpu_percent = match (cpu_of(&sample), pre) {
            (Some((total, system, online)), Some(before)) => {
                cpu_percent(before, (total, system), online)
            }
            _ => 0.0,
        };
        *into.lock().unwrap_or_else(|e| e.into_inner()) = Stats {
            cpu_percent,
            memory_bytes,
        };
    }
}

/// CPU use in % of one core between two samples, as `docker stats` computes it: the
/// container's share of the system's CPU time times the number of CPUs.
pub(super) fn cpu_percent(before: (u64, u64), now: (u64, u64), online: u32) -> f64 {
    let dc = now.0.saturating_sub(before.0) as f64;
    let ds = now.1.saturating_sub(before.1) as f64;
    if ds <= 0.0 {
        return 0.0;
    }
    dc / ds * f64::from(online.max(1)) * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::ContainerState;
    use std::collections::HashMap;

    fn state(status: ContainerStateStatusEnum, code: i64, oom: bool) -> ContainerInspectResponse {
        ContainerInspectResponse {
            state: Some(ContainerState {
                status: Some(status),
                exit_code: Some(code),
                oom_killed: Some(oom),
                paused: Some(status == ContainerStateStatusEnum::PAUSED),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn exit_codes_map_like_processes() {
        use ContainerStateStatusEnum::*;
        assert_eq!(
            status_of(&state(RUNNING, 0, false)),
            InstanceStatus::Running
        );
        assert_eq!(status_of(&state(PAUSED, 0, false)), InstanceStatus::Stopped);
        assert_eq!(
            status_of(&state(EXITED, 137, false)),
            InstanceStatus::Signalled { signal: 9 }
        );
        assert_eq!(
            status_of(&state(EXITED, 3, false)),
            InstanceStatus::Exited { code: 3 }
        );
        assert_eq!(
            status_of(&state(EXITED, 1, true)),
            InstanceStatus::Signalled { signal: 9 }
        );
        assert!(status_of(&ContainerInspectResponse::default()).is_gone());
    }

    #[test]
    fn cpu_percent_is_share_times_cpus() {
        // 0.5 s of container CPU over 2 s of system time (all CPUs) on 2 CPUs: 50 % of one core.
        let p = cpu_percent((0, 0), (500_000_000, 2_000_000_000), 2);
        assert!((p - 50.0).abs() < 1e-9, "{p}");
        assert_eq!(cpu_percent((5, 10), (6, 10), 2), 0.0);
    }

    #[test]
    fn memory_excludes_inactive_cache() {
        let s = ContainerStatsResponse {
            memory_stats: Some(bollard::models::ContainerMemoryStats {
                usage: Some(10_000),
                stats: Some(HashMap::from([("total_inactive_file".to_string(), 4_000)])),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(memory_of(&s), 6_000);
        assert_eq!(memory_of(&ContainerStatsResponse::default()), 0);
    }
}
