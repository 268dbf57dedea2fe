//! The generated Compose file against the installed Compose tool.

/// The installed Compose tool: `docker compose` (v2) or `docker-compose` (v1).
pub(super) fn compose_tool() -> Option<Vec<&'static str>> {
    let works = |cmd: &[&str]| {
        std::process::Command::new(cmd[0])
            .args(&cmd[1..])
            .arg("version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    [vec!["docker", "compose"], vec!["docker-compose"]]
        .into_iter()
        .find(|c| works(c))
}

#[test]
fn compose_file_is_accepted_by_the_installed_compose_tool() {
    let Some(tool) = compose_tool() else {
        assert!(
            std::env::var("SADOMAP_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "SADOMAP_REQUIRE_SERVICES=1 but neither `docker compose` nor `docker-compose` is installed"
        );
        eprintln!("skipped: no Compose tool installed");
        return;
    };
    let dir = std::env::temp_dir().join(format!("sadomap-sup-compose-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (name, cfg) in [
        ("full", sadomap_supervisor::ComposeConfig::default()),
        (
            "embedded",
            sadomap_supervisor::ComposeConfig {
                redis: false,
                scheduler: false,
                workers: 4,
                ..Default::default()
            },
        ),
    ] {
        let path = dir.join(format!("{name}.compose.yaml"));
        sadomap_supervisor::write_compose(&cfg, &path).expect("written");
        let out = std::process::Command::new(tool[0])
            .args(&tool[1..])
            .arg("-f")
            .arg(&path)
            .arg("config")
            .output()
            .expect("compose tool runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {} config rejected the file:\n{}",
            tool.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("api-backup") && stdout.contains("service_healthy"),
            "{stdout}"
        );
        assert!(!dir
            .join(format!("{name}.compose.tmp{}", std::process::id()))
            .exists());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
