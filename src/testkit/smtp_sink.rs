//! A small local SMTP server that keeps what it receives, for tests and `warroom demo`.
//!
//! It speaks just enough ESMTP for lettre over plain TCP: a `220` greeting, `EHLO`/`HELO`,
//! `AUTH PLAIN`/`AUTH LOGIN` (any credentials are accepted), `MAIL FROM`, `RCPT TO`, `DATA`
//! (ended by `<CRLF>.<CRLF>`, dot-unstuffed), `RSET`, `NOOP`, `VRFY` and `QUIT`. There is no
//! STARTTLS, so clients must be configured without TLS (`SMTP_TLS=none`).
//!
//! [`SmtpSink::fail_next`] makes the next `MAIL FROM` commands fail with a transient
//! `451 4.3.0 try again later`, to exercise retries.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Longest command line accepted (RFC 5321 says 512 octets; be generous).
const MAX_COMMAND_LINE: usize = 4096;
/// Longest line of message content accepted.
const MAX_DATA_LINE: usize = 64 * 1024;
/// Largest message accepted.
const MAX_MESSAGE: usize = 10 * 1024 * 1024;

/// One message as the sink received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM:<…>`), without angle brackets; empty for `<>`.
    pub from: String,
    /// The envelope recipients (`RCPT TO:<…>`), without angle brackets.
    pub to: Vec<String>,
    /// The raw message (headers and body) as sent after `DATA`, dot-unstuffed, without the
    /// terminating `.` line. Line endings are kept as the client sent them.
    pub data: String,
}

#[derive(Debug, Default)]
struct Shared {
    messages: Mutex<Vec<ReceivedMail>>,
    fail_next: AtomicUsize,
}

impl Shared {
    fn messages(&self) -> MutexGuard<'_, Vec<ReceivedMail>> {
        // A panic while holding the lock cannot leave the Vec half-updated: keep going.
        self.messages
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether this `MAIL FROM` must be refused (and counts it down).
    fn take_failure(&self) -> bool {
        self.fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// A running SMTP sink on `127.0.0.1`. Dropping it shuts it down.
#[derive(Debug)]
pub struct SmtpSink {
    port: u16,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl SmtpSink {
    /// Binds `127.0.0.1:0` and serves connections in spawned tokio tasks, one per connection.
    ///
    /// # Errors
    ///
    /// When the listening socket cannot be bound.
    pub async fn start() -> std::io::Result<SmtpSink> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared::default());
        let stop = CancellationToken::new();
        tokio::spawn(accept_loop(listener, shared.clone(), stop.clone()));
        Ok(SmtpSink { port, shared, stop })
    }

    /// The port the sink listens on (host `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every message accepted so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.shared.messages().clone()
    }

    /// Answers `451 4.3.0 try again later` to the next `n` `MAIL FROM` commands (replacing any
    /// count still pending).
    pub fn fail_next(&self, n: usize) {
        self.shared.fail_next.store(n, Ordering::SeqCst);
    }

    /// Stops accepting connections and closes the open ones. Idempotent.
    pub fn shutdown(&self) {
        self.stop.cancel();
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                let shared = shared.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        result = serve_connection(stream, &shared) => {
                            if let Err(e) = result {
                                tracing::debug!(error = %e, "smtp sink connection ended with an error");
                            }
                        }
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: do not spin.
                tracing::warn!(error = %e, "smtp sink cannot accept a connection");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// What a line read from the client turned out to be.
enum Line {
    /// A complete line, including its line ending if it had one (the last line before EOF may not).
    Text(Vec<u8>),
    /// Longer than allowed; the rest of the line has been discarded.
    TooLong,
    /// The client closed the connection.
    Eof,
}

/// Reads one `\n`-terminated line of at most `max` bytes without buffering more than that.
async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R, max: usize) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(if too_long {
                Line::TooLong
            } else if line.is_empty() {
                Line::Eof
            } else {
                Line::Text(line)
            });
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let used = chunk.len();
        if !too_long {
            if line.len() + chunk.len() > max {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        reader.consume(used);
        if done {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Text(line)
            });
        }
    }
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The address in `<…>` after a `MAIL FROM:` / `RCPT TO:` prefix; `None` when malformed.
fn path_argument(rest: &str) -> Option<String> {
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    Some(rest[..end].trim().to_string())
}

/// The state of the SMTP dialogue on one connection.
#[derive(Default)]
struct Session {
    greeted: bool,
    from: Option<String>,
    to: Vec<String>,
}

impl Session {
    fn reset(&mut self) {
        self.from = None;
        self.to.clear();
    }
}

async fn serve_connection(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write
        .write_all(b"220 localhost ESMTP warroom smtp sink\r\n")
        .await?;
    let mut session = Session::default();
    loop {
        let raw = match read_line(&mut reader, MAX_COMMAND_LINE).await? {
            Line::Eof => return Ok(()),
            Line::TooLong => {
                write.write_all(b"500 5.5.2 line too long\r\n").await?;
                continue;
            }
            Line::Text(raw) => raw,
        };
        let line = String::from_utf8_lossy(trim_line_end(&raw)).into_owned();
        let (verb, rest) = match line.find(' ') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line.as_str(), ""),
        };
        let verb = verb.to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => {
                session.greeted = true;
                session.reset();
                let client = rest.trim();
                let client = if client.is_empty() { "client" } else { client };
                let reply = format!(
                    "250-localhost greets {client}\r\n250-PIPELINING\r\n250-8BITMIME\r\n\
                     250-SMTPUTF8\r\n250-SIZE {MAX_MESSAGE}\r\n250 AUTH PLAIN LOGIN\r\n"
                );
                write.write_all(reply.as_bytes()).await?;
            }
            "HELO" => {
                session.greeted = true;
                session.reset();
                write.write_all(b"250 localhost\r\n").await?;
            }
            "AUTH" => {
                if !authenticate(rest, &mut reader, &mut write).await? {
                    return Ok(());
                }
            }
            "MAIL" => {
                let reply: &[u8] = if !session.greeted {
                    b"503 5.5.1 say EHLO first\r\n"
                } else if session.from.is_some() {
                    b"503 5.5.1 nested MAIL command\r\n"
                } else {
                    match strip_prefix_ignore_case(rest, "FROM:").and_then(path_argument) {
                        None => b"501 5.5.4 syntax: MAIL FROM:<address>\r\n",
                        Some(_) if shared.take_failure() => b"451 4.3.0 try again later\r\n",
                        Some(from) => {
                            session.from = Some(from);
                            b"250 2.1.0 OK\r\n"
                        }
                    }
                };
                write.write_all(reply).await?;
            }
            "RCPT" => {
                let reply: &[u8] = if session.from.is_none() {
                    b"503 5.5.1 need MAIL before RCPT\r\n"
                } else {
                    match strip_prefix_ignore_case(rest, "TO:").and_then(path_argument) {
                        Some(to) if !to.is_empty() => {
                            session.to.push(to);
                            b"250 2.1.5 OK\r\n"
                        }
                        _ => b"501 5.5.4 syntax: RCPT TO:<address>\r\n",
                    }
                };
                write.write_all(reply).await?;
            }
            "DATA" => {
                if session.from.is_none() || session.to.is_empty() {
                    write
                        .write_all(b"503 5.5.1 need RCPT before DATA\r\n")
                        .await?;
                    continue;
                }
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                match read_data(&mut reader).await? {
                    Data::Complete(data) => {
                        let mail = ReceivedMail {
                            from: session.from.take().unwrap_or_default(),
                            to: std::mem::take(&mut session.to),
                            data: String::from_utf8_lossy(&data).into_owned(),
                        };
                        let queued = {
                            let mut messages = shared.messages();
                            messages.push(mail);
                            messages.len()
                        };
                        let reply = format!("250 2.0.0 OK queued as {queued}\r\n");
                        write.write_all(reply.as_bytes()).await?;
                    }
                    Data::TooBig => {
                        session.reset();
                        write.write_all(b"552 5.3.4 message too big\r\n").await?;
                    }
                    Data::Eof => return Ok(()),
                }
            }
            "RSET" => {
                session.reset();
                write.write_all(b"250 2.0.0 OK\r\n").await?;
            }
            "NOOP" => write.write_all(b"250 2.0.0 OK\r\n").await?,
            "VRFY" => {
                write
                    .write_all(b"252 2.5.2 cannot verify, will accept\r\n")
                    .await?
            }
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                let _ = write.shutdown().await;
                return Ok(());
            }
            "STARTTLS" => {
                write
                    .write_all(b"502 5.5.1 STARTTLS not supported\r\n")
                    .await?
            }
            _ => {
                write
                    .write_all(b"500 5.5.2 command not recognized\r\n")
                    .await?
            }
        }
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

enum Data {
    Complete(Vec<u8>),
    TooBig,
    Eof,
}

/// Reads message content up to the `.` line, undoing dot-stuffing. A message that grows too
/// big is read to its end and dropped.
async fn read_data<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<Data> {
    let mut data = Vec::new();
    let mut too_big = false;
    loop {
        let line = match read_line(reader, MAX_DATA_LINE).await? {
            Line::Eof => return Ok(Data::Eof),
            Line::TooLong => {
                too_big = true;
                continue;
            }
            Line::Text(line) => line,
        };
        if trim_line_end(&line) == b"." {
            return Ok(if too_big {
                Data::TooBig
            } else {
                Data::Complete(data)
            });
        }
        if too_big {
            continue;
        }
        let content = line.strip_prefix(b".").unwrap_or(&line);
        if data.len() + content.len() > MAX_MESSAGE {
            too_big = true;
            data = Vec::new();
            continue;
        }
        data.extend_from_slice(content);
    }
}

/// Runs an `AUTH` exchange, accepting any credentials. Returns false when the client hung up.
async fn authenticate<R, W>(args: &str, reader: &mut R, write: &mut W) -> std::io::Result<bool>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWriteExt + Unpin,
{
    let mut parts = args.split_whitespace();
    let mechanism = parts.next().unwrap_or_default().to_ascii_uppercase();
    let initial = parts.next();
    // How many more client lines the mechanism needs, with the challenge to send before each.
    let challenges: &[&[u8]] = match (mechanism.as_str(), initial) {
        ("PLAIN", Some(_)) => &[],
        ("PLAIN", None) => &[b"334 \r\n"],
        // "Username:" and "Password:" in base64.
        ("LOGIN", Some(_)) => &[b"334 UGFzc3dvcmQ6\r\n"],
        ("LOGIN", None) => &[b"334 VXNlcm5hbWU6\r\n", b"334 UGFzc3dvcmQ6\r\n"],
        _ => {
            write
                .write_all(b"504 5.5.4 unrecognized authentication type\r\n")
                .await?;
            return Ok(true);
        }
    };
    for challenge in challenges {
        write.write_all(challenge).await?;
        match read_line(reader, MAX_COMMAND_LINE).await? {
            Line::Eof => return Ok(false),
            Line::TooLong => {
                write.write_all(b"500 5.5.2 line too long\r\n").await?;
                return Ok(true);
            }
            Line::Text(line) => {
                if trim_line_end(&line) == b"*" {
                    write
                        .write_all(b"501 5.7.0 authentication cancelled\r\n")
                        .await?;
                    return Ok(true);
                }
            }
        }
    }
    write
        .write_all(b"235 2.7.0 authentication successful\r\n")
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A raw SMTP client: sends `line` and returns the whole reply (all its lines).
    struct Client {
        reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
        write: tokio::net::tcp::OwnedWriteHalf,
    }

    impl Client {
        async fn connect(port: u16) -> (Client, String) {
            let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let (read, write) = stream.into_split();
            let mut client = Client {
                reader: BufReader::new(read),
                write,
            };
            let greeting = client.reply().await;
            (client, greeting)
        }

        async fn reply(&mut self) -> String {
            let mut out = String::new();
            loop {
                let mut line = String::new();
                self.reader.read_line(&mut line).await.unwrap();
                assert!(!line.is_empty(), "connection closed; so far: {out:?}");
                out.push_str(&line);
                if line.as_bytes().get(3) != Some(&b'-') {
                    return out;
                }
            }
        }

        async fn send(&mut self, text: &str) -> String {
            self.write.write_all(text.as_bytes()).await.unwrap();
            self.reply().await
        }
    }

    #[tokio::test]
    async fn a_whole_dialogue_is_recorded_and_dot_unstuffed() {
        let sink = SmtpSink::start().await.unwrap();
        let (mut c, greeting) = Client::connect(sink.port()).await;
        assert!(greeting.starts_with("220 "), "{greeting}");
        let ehlo = c.send("EHLO tester\r\n").await;
        assert!(ehlo.starts_with("250-"), "{ehlo}");
        assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
        assert!(c.send("NOOP\r\n").await.starts_with("250 "));
        assert!(c
            .send("MAIL FROM:<a@example.com> BODY=8BITMIME\r\n")
            .await
            .starts_with("250 "));
        assert!(c
            .send("RCPT TO:<b@example.com>\r\n")
            .await
            .starts_with("250 "));
        assert!(c
            .send("rcpt to:<c@example.com>\r\n")
            .await
            .starts_with("250 "));
        assert!(c.send("DATA\r\n").await.starts_with("354 "));
        let done = c
            .send("Subject: hi\r\n\r\n..hidden dot\r\n. not the end\r\n.\r\n")
            .await;
        assert!(done.starts_with("250 "), "{done}");
        assert!(c.send("QUIT\r\n").await.starts_with("221 "));

        let got = sink.messages();
        assert_eq!(
            got,
            [ReceivedMail {
                from: "a@example.com".into(),
                to: vec!["b@example.com".into(), "c@example.com".into()],
                data: "Subject: hi\r\n\r\n.hidden dot\r\n not the end\r\n".into(),
            }]
        );
    }

    #[tokio::test]
    async fn fail_next_refuses_mail_from_then_recovers() {
        let sink = SmtpSink::start().await.unwrap();
        sink.fail_next(2);
        let (mut c, _) = Client::connect(sink.port()).await;
        c.send("EHLO t\r\n").await;
        for _ in 0..2 {
            let reply = c.send("MAIL FROM:<a@example.com>\r\n").await;
            assert_eq!(reply, "451 4.3.0 try again later\r\n");
        }
        assert!(c
            .send("MAIL FROM:<a@example.com>\r\n")
            .await
            .starts_with("250 "));
        assert!(c.send("RSET\r\n").await.starts_with("250 "));
        // RSET ended the transaction: RCPT needs a new MAIL.
        assert!(c
            .send("RCPT TO:<b@example.com>\r\n")
            .await
            .starts_with("503 "));
        assert!(sink.messages().is_empty());
    }

    #[tokio::test]
    async fn bad_input_gets_errors_not_panics() {
        let sink = SmtpSink::start().await.unwrap();
        let (mut c, _) = Client::connect(sink.port()).await;
        assert!(c.send("MAIL FROM:<a@b>\r\n").await.starts_with("503 "));
        c.send("EHLO t\r\n").await;
        assert!(c.send("MAIL FROM:nobrackets\r\n").await.starts_with("501 "));
        assert!(c.send("DATA\r\n").await.starts_with("503 "));
        assert!(c.send("\r\n").await.starts_with("500 "));
        assert!(c.send("\u{fffd}\u{0}\r\n").await.starts_with("500 "));
        let long = format!("{}\r\n", "x".repeat(MAX_COMMAND_LINE * 2));
        assert!(c.send(&long).await.starts_with("500 "));
        assert!(c.send("AUTH PLAIN AGFAYg==\r\n").await.starts_with("235 "));
        assert!(c.send("AUTH LOGIN\r\n").await.starts_with("334 "));
        assert!(c.send("dXNlcg==\r\n").await.starts_with("334 "));
        assert!(c.send("cGFzcw==\r\n").await.starts_with("235 "));
        assert!(c.send("NOOP\r\n").await.starts_with("250 "));
    }

    #[tokio::test]
    async fn shutdown_closes_connections_and_stops_listening() {
        let sink = SmtpSink::start().await.unwrap();
        let port = sink.port();
        let (mut c, _) = Client::connect(port).await;
        sink.shutdown();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            c.reader.read_to_end(&mut rest),
        )
        .await;
        assert!(read.is_ok(), "the open connection was not closed");
        // The listener is gone (give the accept task a moment to notice).
        let mut refused = false;
        for _ in 0..50 {
            if TcpStream::connect(("127.0.0.1", port)).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(refused, "still accepting connections after shutdown");
    }
}
