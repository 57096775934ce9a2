//! The control socket: `/run/vpn-appliance/NAME.sock`, a Unix stream socket only root can
//! open (mode 0600 in a 0700 directory). One JSON request per line, one JSON answer per line:
//! `{"initiate":"aws-t1"}` -> `{"ok":true,"message":"initiating"}`.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    os::unix::{fs::PermissionsExt as _, net::UnixListener},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::Context as _;

use super::commands::{CommandRequest, DriverCommand, TunnelCommand};

/// How long a command may take the IKE thread before the client is told so.
const ANSWER_WAIT: Duration = Duration::from_secs(5);
/// The longest line a client may send.
const MAX_REQUEST: u64 = 4096;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Answer {
    pub ok: bool,
    pub message: String,
}

pub struct ControlSocket {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ControlSocket {
    pub fn start(path: &Path, commands: mpsc::Sender<CommandRequest>) -> anyhow::Result<Self> {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
        }
        let listener =
            UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("making {} root-only", path.display()))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("control".into())
            .spawn(move || serve(&listener, &commands, &flag))
            .context("starting the control socket thread")?;
        Ok(ControlSocket {
            path: path.to_owned(),
            stop,
            thread: Some(thread),
        })
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve(listener: &UnixListener, commands: &mpsc::Sender<CommandRequest>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let answer = answer(&stream, commands);
                let mut stream = stream;
                let line = serde_json::to_string(&answer).unwrap_or_default();
                if let Err(err) = writeln!(stream, "{line}") {
                    tracing::debug!(error = %err, "control socket: answering");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(err) => {
                tracing::warn!(error = %err, "control socket");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn answer(
    stream: &std::os::unix::net::UnixStream,
    commands: &mpsc::Sender<CommandRequest>,
) -> Answer {
    let refuse = |message: String| Answer { ok: false, message };
    let mut line = String::new();
    let mut reader = BufReader::new(std::io::Read::take(stream, MAX_REQUEST));
    if let Err(err) = reader.read_line(&mut line) {
        return refuse(format!("reading the request: {err}"));
    }
    let command: TunnelCommand = match serde_json::from_str(line.trim()) {
        Ok(c) => c,
        Err(err) => {
            tracing::warn!(error = %err, "control socket: malformed request");
            return refuse(format!("malformed request: {err}"));
        }
    };
    tracing::info!(?command, "operator command");
    let (reply, answer) = mpsc::channel();
    let request = CommandRequest {
        command: DriverCommand::Tunnel(command),
        reply: Some(reply),
    };
    if commands.send(request).is_err() {
        return refuse("the IKE engine has stopped".into());
    }
    match answer.recv_timeout(ANSWER_WAIT) {
        Ok(Ok(message)) => Answer { ok: true, message },
        Ok(Err(message)) => refuse(message),
        Err(_) => refuse("no answer from the IKE engine in time".into()),
    }
}

/// The client side: sends `command` to the running instance at `path` and returns its answer.
pub fn send(path: &Path, command: &TunnelCommand) -> anyhow::Result<Answer> {
    use std::io::Read as _;
    let mut stream = std::os::unix::net::UnixStream::connect(path).with_context(|| {
        format!(
            "connecting to {} (is the instance running, and are you root?)",
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(ANSWER_WAIT + Duration::from_secs(2)))?;
    writeln!(stream, "{}", serde_json::to_string(command)?)?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    serde_json::from_str(text.trim()).with_context(|| format!("reading the answer {text:?}"))
}
