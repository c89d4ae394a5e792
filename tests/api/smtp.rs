//! A real SMTP server for tests, on a loopback port: it speaks enough SMTP for lettre
//! (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) and hands every message it receives to the
//! test, raw. Mail is delivered over the network exactly as in production.

use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// The server, and the messages it received.
#[derive(Debug)]
pub struct SmtpCatcher {
    pub url: String,
    received: mpsc::UnboundedReceiver<String>,
    refusing: Arc<AtomicBool>,
}

impl SmtpCatcher {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("an SMTP port");
        let url = format!("smtp://{}", listener.local_addr().expect("address"));
        let (deliver, received) = mpsc::unbounded_channel();
        let refusing = Arc::new(AtomicBool::new(false));
        let refuse = Arc::clone(&refusing);
        tokio::spawn(async move {
            while let Ok((connection, _)) = listener.accept().await {
                tokio::spawn(serve(connection, deliver.clone(), Arc::clone(&refuse)));
            }
        });
        Self {
            url,
            received,
            refusing,
        }
    }

    /// While true, every recipient is turned away with a temporary failure (451).
    pub fn refuse_recipients(&self, refuse: bool) {
        self.refusing.store(refuse, Ordering::SeqCst);
    }

    /// The next message, waiting at most 30 s for it.
    pub async fn next_mail(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(30), self.received.recv())
            .await
            .expect("a mail arrives within 30 s")
            .expect("the SMTP server runs")
    }

    /// Every message received so far, without waiting.
    pub fn received_so_far(&mut self) -> Vec<String> {
        let mut mails = Vec::new();
        while let Ok(mail) = self.received.try_recv() {
            mails.push(mail);
        }
        mails
    }
}

async fn serve(
    connection: TcpStream,
    deliver: mpsc::UnboundedSender<String>,
    refusing: Arc<AtomicBool>,
) {
    let (read, mut write) = connection.into_split();
    let mut lines = BufReader::new(read).lines();
    let _ = write.write_all(b"220 catcher ESMTP\r\n").await;
    while let Ok(Some(line)) = lines.next_line().await {
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250-catcher\r\n250 8BITMIME\r\n",
            "RCPT" if refusing.load(Ordering::SeqCst) => b"451 4.3.0 try again later\r\n",
            "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
            "DATA" => {
                let _ = write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await;
                let mut message = String::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line == "." {
                        break;
                    }
                    message.push_str(line.strip_prefix('.').unwrap_or(&line));
                    message.push('\n');
                }
                let _ = deliver.send(message);
                b"250 OK queued\r\n"
            }
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => b"502 not implemented\r\n",
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}
