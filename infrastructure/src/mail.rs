//! Sending mail: over SMTP with lettre when `SMTP_URL` is set, otherwise as `.eml` files in
//! a directory, so that a first run with nothing configured still shows every mail it
//! would have sent.
//!
//! `SMTP_URL` takes lettre's forms: `smtp://host:port` (plain, for local catchers),
//! `smtp://user:pass@host:587?tls=required` (STARTTLS), `smtps://user:pass@host:465`
//! (TLS from the start).

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// One mail, rendered.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    /// The recipient's address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text part.
    pub text: String,
    /// HTML part.
    pub html: String,
    /// The outbox message this mail is, when it is one: the same id on every attempt, so
    /// that a mail sent again after a crash (between sending it and recording it sent) is
    /// recognisably the same mail. It becomes the `Message-ID`, and the file mailer's file
    /// name (a second attempt replaces the first file).
    pub key: Option<String>,
}

/// Why a mail was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The mail itself is wrong (e.g. an address that cannot be parsed): retrying won't help.
    #[error("the mail cannot be built: {0}")]
    Invalid(String),
    /// The transport failed; retrying later may help.
    #[error("the mail could not be delivered: {0}")]
    Transport(String),
    /// The mailer's settings are wrong.
    #[error("mail settings are invalid: {0}")]
    Settings(String),
}

/// Where mail goes.
#[async_trait]
pub trait Mailer: Send + Sync + std::fmt::Debug {
    /// Sends one mail.
    ///
    /// # Errors
    /// [`MailError::Invalid`] when the mail cannot be built, [`MailError::Transport`] when
    /// it could not be delivered.
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError>;
}

fn build(from: &Mailbox, mail: &OutgoingMail) -> Result<Message, MailError> {
    let to: Mailbox = mail
        .to
        .parse()
        .map_err(|e| MailError::Invalid(format!("recipient: {e}")))?;
    let mut builder = Message::builder();
    if let Some(key) = &mail.key {
        builder = builder.message_id(Some(format!("<{key}@expense-tracker>")));
    }
    builder
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .multipart(MultiPart::alternative_plain_html(
            mail.text.clone(),
            mail.html.clone(),
        ))
        .map_err(|e| MailError::Invalid(e.to_string()))
}

/// Mail over SMTP.
#[derive(Debug)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let message = build(&self.from, mail)?;
        self.transport
            .send(message)
            .await
            .map(drop)
            .map_err(|e| MailError::Transport(e.to_string()))
    }
}

/// Mail written as `.eml` files, one per mail, for a first run without SMTP.
#[derive(Debug)]
pub struct FileMailer {
    directory: PathBuf,
    from: Mailbox,
}

#[async_trait]
impl Mailer for FileMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let message = build(&self.from, mail)?;
        let name = match &mail.key {
            Some(key) => format!("{key}.eml"),
            None => format!(
                "{}-{}.eml",
                chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
                uuid::Uuid::new_v4()
            ),
        };
        let path = self.directory.join(&name);
        let partial = self.directory.join(format!(".{name}.partial"));
        let bytes = message.formatted();
        let io = |e: std::io::Error| MailError::Transport(format!("{}: {e}", path.display()));
        tokio::fs::create_dir_all(&self.directory)
            .await
            .map_err(io)?;
        // Written aside and renamed, so that a reader never sees half a mail.
        tokio::fs::write(&partial, bytes).await.map_err(io)?;
        tokio::fs::rename(&partial, &path).await.map_err(io)
    }
}

/// The mailer the settings ask for: SMTP when `smtp_url` is given, files in `mail_dir`
/// otherwise.
///
/// # Errors
/// [`MailError::Settings`] when the sender or the SMTP URL cannot be used.
pub fn mailer_from_settings(
    smtp_url: Option<&str>,
    mail_dir: PathBuf,
    from: &str,
) -> Result<Arc<dyn Mailer>, MailError> {
    let from: Mailbox = from
        .parse()
        .map_err(|e| MailError::Settings(format!("MAIL_FROM {from:?}: {e}")))?;
    Ok(match smtp_url {
        Some(url) => Arc::new(SmtpMailer {
            transport: AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                .map_err(|e| MailError::Settings(format!("SMTP_URL: {e}")))?
                .build(),
            from,
        }),
        None => Arc::new(FileMailer {
            directory: mail_dir,
            from,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(to: &str) -> OutgoingMail {
        OutgoingMail {
            to: to.into(),
            subject: "Reset your password".into(),
            text: "Open the link.".into(),
            html: "<p>Open the link.</p>".into(),
            key: None,
        }
    }

    #[tokio::test]
    async fn a_mail_sent_again_under_its_key_replaces_its_file_and_keeps_its_message_id() {
        let directory = tempfile::tempdir().expect("dir");
        let mailer = mailer_from_settings(
            None,
            directory.path().to_path_buf(),
            "Tracker <no-reply@example.com>",
        )
        .expect("mailer");
        let keyed = OutgoingMail {
            key: Some("0b3c1d9e-5a55-4a51-9a7e-3f1f2f6c9d10".into()),
            ..mail("asha@example.com")
        };
        mailer.send(&keyed).await.expect("sent");
        mailer.send(&keyed).await.expect("sent again");
        let files: Vec<_> = std::fs::read_dir(directory.path())
            .expect("mail dir")
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let content = std::fs::read_to_string(&files[0]).expect("readable");
        assert!(
            content.contains("Message-ID: <0b3c1d9e-5a55-4a51-9a7e-3f1f2f6c9d10@expense-tracker>"),
            "{content}"
        );
    }

    #[tokio::test]
    async fn without_smtp_each_mail_is_an_eml_file_with_both_parts() {
        let directory = tempfile::tempdir().expect("dir");
        let mailer = mailer_from_settings(
            None,
            directory.path().join("mail"),
            "Tracker <no-reply@example.com>",
        )
        .expect("mailer");
        mailer.send(&mail("asha@example.com")).await.expect("sent");

        let files: Vec<_> = std::fs::read_dir(directory.path().join("mail"))
            .expect("mail dir")
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(files.len(), 1);
        assert!(files[0].extension().is_some_and(|e| e == "eml"));
        let content = std::fs::read_to_string(&files[0]).expect("readable");
        assert!(content.contains("To: asha@example.com"));
        assert!(content.contains("Subject: Reset your password"));
        assert!(content.contains("text/plain") && content.contains("text/html"));
    }

    #[tokio::test]
    async fn a_bad_recipient_is_a_permanent_error() {
        let directory = tempfile::tempdir().expect("dir");
        let mailer =
            mailer_from_settings(None, directory.path().to_path_buf(), "no-reply@example.com")
                .expect("mailer");
        assert!(matches!(
            mailer.send(&mail("not an address")).await,
            Err(MailError::Invalid(_))
        ));
    }

    #[test]
    fn bad_settings_are_refused_up_front() {
        assert!(matches!(
            mailer_from_settings(None, PathBuf::from("."), "not a mailbox"),
            Err(MailError::Settings(_))
        ));
        assert!(matches!(
            mailer_from_settings(Some("ftp://nowhere"), PathBuf::from("."), "a@example.com"),
            Err(MailError::Settings(_))
        ));
    }
}
