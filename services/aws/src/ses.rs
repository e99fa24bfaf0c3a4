//! Mailer = Amazon SES v2. The notifier builds the whole MIME message (with attachments); SES sends the
//! raw bytes as they are.

use async_trait::async_trait;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};
use sluice_proto::StageError;

use super::error::CallError;
use sluice_runtime::ports::{Mailer, OutgoingEmail};

/// SES v2's limit on a raw message, attachments and encoding included.
pub const MAX_RAW_MESSAGE_BYTES: usize = 40 * 1024 * 1024;

/// The [`Mailer`] on SES v2 `SendEmail` with `Content.Raw`.
#[derive(Debug, Clone)]
pub struct SesMailer {
    client: aws_sdk_sesv2::Client,
    configuration_set: Option<String>,
}

/// Whether SES lets Sluice send from an identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityStatus {
    /// False when the identity already existed.
    pub created: bool,
    /// False until the owner clicked the verification link (address) or published the DNS records
    /// (domain). Emulators verify at once.
    pub verified_for_sending: bool,
}

impl SesMailer {
    pub fn new(client: aws_sdk_sesv2::Client) -> Self {
        SesMailer {
            client,
            configuration_set: None,
        }
    }

    /// Sends through an SES configuration set (event destinations for bounces and complaints).
    pub fn with_configuration_set(mut self, name: impl Into<String>) -> Self {
        self.configuration_set = Some(name.into());
        self
    }

    /// Registers an address or domain as a sending identity (CreateEmailIdentity); SES then mails the
    /// address a verification link. Idempotent: an existing identity is reported, not re-created (which
    /// would send the owner another verification mail). For `sluice deploy`.
    pub async fn verify_identity(&self, identity: &str) -> Result<IdentityStatus, StageError> {
        if let Some(verified) = self.identity_verified(identity).await? {
            return Ok(IdentityStatus {
                created: false,
                verified_for_sending: verified,
            });
        }
        match self
            .client
            .create_email_identity()
            .email_identity(identity)
            .send()
            .await
        {
            Ok(out) => Ok(IdentityStatus {
                created: true,
                verified_for_sending: out.verified_for_sending_status(),
            }),
            Err(e) => {
                let exists = e
                    .as_service_error()
                    .is_some_and(|s| s.is_already_exists_exception());
                let e = CallError::from_sdk(e);
                if exists || e.is(&["AlreadyExistsException"]) {
                    // Created by someone else since we looked.
                    let verified = self.identity_verified(identity).await?.unwrap_or(false);
                    return Ok(IdentityStatus {
                        created: false,
                        verified_for_sending: verified,
                    });
                }
                Err(if e.is(&["BadRequestException"]) {
                    StageError::invalid_input(format!(
                        "SES refused the identity {identity:?} ({e}); use an e-mail address or a domain name in \
                         [dataset.notify]"
                    ))
                } else {
                    e.into_stage_error(&format!("SES CreateEmailIdentity {identity}"))
                })
            }
        }
    }

    /// Whether the identity may send, or None when SES does not know it.
    async fn identity_verified(&self, identity: &str) -> Result<Option<bool>, StageError> {
        match self
            .client
            .get_email_identity()
            .email_identity(identity)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.verified_for_sending_status())),
            Err(e) => {
                let missing = e
                    .as_service_error()
                    .is_some_and(|s| s.is_not_found_exception());
                let e = CallError::from_sdk(e);
                if missing || e.is(&["NotFoundException"]) {
                    Ok(None)
                } else {
                    Err(e.into_stage_error(&format!("SES GetEmailIdentity {identity}")))
                }
            }
        }
    }
}

#[async_trait]
impl Mailer for SesMailer {
    /// Returns SES's message id.
    async fn send(&self, email: &OutgoingEmail) -> Result<String, StageError> {
        if email.to.is_empty() {
            return Err(StageError::internal(format!(
                "the e-mail {:?} has no recipients",
                email.subject
            )));
        }
        if email.raw.len() > MAX_RAW_MESSAGE_BYTES {
            return Err(StageError::invalid_input(format!(
                "the e-mail {:?} is {} bytes, over SES's {MAX_RAW_MESSAGE_BYTES}-byte limit; attach fewer rows \
                 or link to the report in the bucket instead",
                email.subject,
                email.raw.len()
            )));
        }
        let out = self
            .client
            .send_email()
            .from_email_address(&email.from)
            // The envelope: who receives it, whatever the To/Cc headers of the raw message say.
            .destination(Destination::builder().set_to_addresses(Some(email.to.clone())).build())
            .content(EmailContent::builder().raw(RawMessage::builder().data(Blob::new(email.raw.clone())).build().map_err(|e| StageError::internal(format!("cannot build the SES raw message: {e}")))?).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await
            .map_err(|e| {
                let e = CallError::from_sdk(e);
                let to = email.to.join(", ");
                if e.is(&["MessageRejected", "MailFromDomainNotVerifiedException"]) {
                    StageError::invalid_input(format!(
                        "SES refused the e-mail {:?} from {} to {to} ({e}); verify the sender (and, while the \
                         account is in the SES sandbox, the recipients) with `sluice deploy` or in the SES console",
                        email.subject, email.from
                    ))
                } else if e.is(&["AccountSuspendedException", "SendingPausedException", "NotFoundException"]) {
                    StageError::invalid_input(format!(
                        "SES cannot send the e-mail {:?} ({e}); sending is paused or a configuration set is \
                         missing: check the SES account status and `sluice deploy`",
                        email.subject
                    ))
                } else {
                    e.into_stage_error(&format!("SES SendEmail {:?} to {to}", email.subject))
                }
            })?;
        Ok(out.message_id.unwrap_or_default())
    }
}
