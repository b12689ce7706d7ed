//! `ctr events` recorded to a file, and each container's events reduced to
//! lines that compare across runtimes: topic, then the fields by name, with
//! the container id as `<c>`, pids named by the process they belong to
//! (`<init>`, `<exec:ID>`) and paths, mounts and times by presence only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use pinc_tests::daemons::{wait_until, Containerd};

pub struct EventLog {
    child: Child,
    path: PathBuf,
    ns: String,
}

/// One event of the namespace: topic and its JSON body.
#[derive(Debug, Clone)]
pub struct Event {
    pub topic: String,
    pub body: serde_json::Value,
}

impl EventLog {
    /// Starts `ctr events` and waits until it is subscribed (an image tag,
    /// an event of its own, shows in the stream).
    pub fn start(d: &Containerd, ns: &str, dir: &Path, image: &str) -> Self {
        let path = dir.join("events.log");
        let log = std::fs::File::create(&path).expect("events log");
        let child = d
            .ctr(ns, &["events"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .expect("ctr events");
        let mut this = Self {
            child,
            path,
            ns: ns.to_string(),
        };
        let probe = "docker.io/library/probe:events";
        let subscribed = wait_until(Duration::from_secs(20), || {
            let _ = d.ctr_out(ns, &["image", "rm", probe]);
            let _ = d.ctr_out(ns, &["image", "tag", image, probe]);
            std::thread::sleep(Duration::from_millis(100));
            this.text().contains("/images/create")
        });
        let _ = d.ctr_out(ns, &["image", "rm", probe]);
        if !subscribed {
            this.stop();
            panic!("ctr events showed no /images/create within 20s");
        }
        this
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap_or_default()
    }

    /// The task events of this namespace, in the order containerd sent them.
    pub fn tasks(&self) -> Vec<Event> {
        let marker = format!(" {} /tasks/", self.ns);
        self.text()
            .lines()
            .filter_map(|l| {
                let at = l.find(&marker)?;
                let rest = &l[at + self.ns.len() + 2..];
                let (topic, json) = rest.split_once(' ')?;
                let body = serde_json::from_str(json.trim()).ok()?;
                Some(Event {
                    topic: topic.to_string(),
                    body,
                })
            })
            .collect()
    }

    /// The events of container `id`.
    pub fn of(&self, id: &str) -> Vec<Event> {
        self.tasks()
            .into_iter()
            .filter(|e| e.body["container_id"] == id)
            .collect()
    }

    /// Waits (bounded) until container `id` has an event with `topic`.
    pub fn wait_for(&self, id: &str, topic: &str) -> bool {
        wait_until(Duration::from_secs(20), || {
            self.of(id).iter().any(|e| e.topic == topic)
        })
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Fields compared by presence only: they name paths, mounts or times.
const PRESENCE: &[&str] = &["bundle", "rootfs", "io", "exited_at"];

/// The pid of the process each start event names.
fn pid_names(events: &[Event]) -> HashMap<u64, String> {
    let mut names = HashMap::new();
    for e in events {
        let Some(pid) = e.body["pid"].as_u64() else {
            continue;
        };
        match e.topic.as_str() {
            "/tasks/create" => {
                names.entry(pid).or_insert_with(|| "<init>".to_string());
            }
            "/tasks/exec-started" => {
                let exec = e.body["exec_id"].as_str().unwrap_or("?");
                names.entry(pid).or_insert_with(|| format!("<exec:{exec}>"));
            }
            _ => {}
        }
    }
    names
}

/// One line per event: `topic field=value ...` (fields sorted by name).
pub fn normalize(id: &str, events: &[Event]) -> Vec<String> {
    let names = pid_names(events);
    events
        .iter()
        .map(|e| {
            let mut fields: Vec<String> = e
                .body
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| k.as_str() != "container_id")
                .map(|(k, v)| {
                    if PRESENCE.contains(&k.as_str()) {
                        return k.clone();
                    }
                    let value = match (k.as_str(), v) {
                        ("pid", v) => v
                            .as_u64()
                            .and_then(|p| names.get(&p).cloned())
                            .unwrap_or_else(|| format!("<unknown pid {v}>")),
                        (_, serde_json::Value::String(s)) if s == id => "<c>".to_string(),
                        (_, serde_json::Value::String(s)) => s.clone(),
                        (_, v) => v.to_string(),
                    };
                    format!("{k}={value}")
                })
                .collect();
            fields.sort();
            format!("{} {}", e.topic, fields.join(" "))
                .trim_end()
                .to_string()
        })
        .collect()
}
