//! The generated Compose file, brought up for real with the installed Compose tool on images
//! built FROM scratch (`docker/build-images.sh`), and a failover on it: the api-primary
//! container's process is killed (a crash, not `docker stop`), the api-backup container keeps
//! answering, and Docker's restart policy brings api-primary back.

use std::process::{Command, Output};

use sadomap_supervisor::{ComposeConfig, HealthcheckConfig, HttpTarget};

use super::compose::compose_tool;
use super::docker::{services_required, unique};
use super::*;

const IMAGES: [&str; 2] = ["sadomap:local", "sadomap-redis:local"];

/// `docker-compose -p PROJECT -f FILE ...`; `down` when dropped (on panic too).
struct Project {
    tool: Vec<&'static str>,
    name: String,
    file: PathBuf,
}

impl Project {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(self.tool[0])
            .args(&self.tool[1..])
            .arg("-p")
            .arg(&self.name)
            .arg("-f")
            .arg(&self.file)
            .args(args)
            .output()
            .expect("the compose tool runs")
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let out = self.run(&["down", "-v", "--remove-orphans", "-t", "2"]);
        if !out.status.success() {
            eprintln!("compose down: {}", String::from_utf8_lossy(&out.stderr));
        }
        let _ = std::fs::remove_file(&self.file);
    }
}

fn image_missing() -> Option<&'static str> {
    IMAGES.into_iter().find(|image| {
        !Command::new("docker")
            .args(["image", "inspect", image])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn ok(port: u16) -> bool {
    HttpTarget::parse(
        &format!("http://127.0.0.1:{port}/health"),
        Duration::from_millis(500),
    )
    .is_ok_and(|t| t.get().is_ok())
}

#[test]
fn compose_file_runs_and_docker_restarts_a_crashed_api_primary_while_backup_serves() {
    let Some(tool) = compose_tool() else {
        assert!(
            !services_required(),
            "SADOMAP_REQUIRE_SERVICES=1 but no Compose tool is installed"
        );
        eprintln!("skipped: no Compose tool installed");
        return;
    };
    if let Some(image) = image_missing() {
        assert!(
            !services_required(),
            "SADOMAP_REQUIRE_SERVICES=1 but image {image} is missing (docker/build-images.sh)"
        );
        eprintln!("skipped: image {image} is missing; build it with docker/build-images.sh");
        return;
    }
    let (api_port, backup_port) = (free_port(), free_port());
    let config = ComposeConfig {
        image: "sadomap:local".into(),
        redis_image: "sadomap-redis:local".into(),
        api_port,
        backup_port,
        workers: 1,
        healthcheck: HealthcheckConfig {
            interval_secs: 1,
            timeout_secs: 2,
            retries: 3,
            start_period_secs: 1,
        },
        restart: "always".into(),
        ..ComposeConfig::default()
    };
    let name = unique("compose");
    let file = std::env::temp_dir().join(format!("{name}.compose.yaml"));
    sadomap_supervisor::write_compose(&config, &file).expect("compose file written");
    let project = Project { tool, name, file };
    let t = Instant::now();
    let up = project.run(&["up", "-d"]);
    assert!(
        up.status.success(),
        "compose up: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    wait_for(Duration::from_secs(60), || {
        (ok(api_port) && ok(backup_port)).then_some(())
    })
    .expect("api-primary and api-backup answer on their host ports");
    println!("compose up → both APIs answer in {:?}", t.elapsed());

    let ps = project.run(&["ps", "-q", "api-primary"]);
    let id = String::from_utf8_lossy(&ps.stdout).trim().to_string();
    assert!(!id.is_empty(), "api-primary container id");
    let pid_of = |id: &str| -> Option<u32> {
        let out = Command::new("docker")
            .args(["inspect", "-f", "{{.State.Pid}}", id])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .ok()
            .filter(|&p| p > 0)
    };
    let pid = pid_of(&id).expect("api-primary's process");
    // A crash: SIGKILL to the process from outside the engine (`docker kill` would count as a
    // manual stop, which no restart policy undoes).
    let t0 = Instant::now();
    signal(pid, Signal::SIGKILL);
    let (mut backup_ok, mut backup_failed, mut primary_down) = (0u32, 0u32, None);
    let back = wait_for(Duration::from_secs(60), || {
        if ok(backup_port) {
            backup_ok += 1;
        } else {
            backup_failed += 1;
        }
        let up = ok(api_port);
        if !up && primary_down.is_none() {
            primary_down = Some(t0.elapsed());
        }
        let restarted = primary_down.is_some() || pid_of(&id).is_some_and(|p| p != pid);
        (up && restarted).then(|| t0.elapsed())
    })
    .expect("Docker's restart policy brings api-primary back");
    println!(
        "compose: api-primary killed; down after {primary_down:?}, answering again after {back:?}; \
         api-backup answered {backup_ok} of {} probes meanwhile",
        backup_ok + backup_failed
    );
    assert_eq!(backup_failed, 0, "api-backup served throughout");
    assert!(
        pid_of(&id).is_some_and(|p| p != pid),
        "same container, new process"
    );
}
