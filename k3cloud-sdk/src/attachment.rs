//! Attachments: chunked base64 upload and download.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::json;

use crate::client::Client;
use crate::de;
use crate::error::{Error, Result};
use crate::form::written;
use crate::response::decode_value_at;
use crate::retry::Idempotency;
use crate::service;
use crate::transport::Call;

/// A file to attach to a document. The reference does not document these keys; they follow the
/// vendor SDK sample (`FileName`, `FormId`, `IsLast`, `InterId`, `BillNO`, `AliasFileName`,
/// `FileId`, `SendByte`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Attachment {
    /// The form of the document.
    pub form_id: String,
    /// The document's internal id.
    pub inter_id: String,
    /// The document's number.
    pub bill_no: String,
    /// The file name.
    pub file_name: String,
    /// The name shown (defaults to the file name).
    pub alias: Option<String>,
    /// The content.
    pub bytes: Vec<u8>,
}

impl Attachment {
    /// A file for document `bill_no` (internal id `inter_id`) of `form_id`.
    pub fn new(
        form_id: impl Into<String>,
        inter_id: impl Into<String>,
        bill_no: impl Into<String>,
        file_name: impl Into<String>,
        bytes: Vec<u8>,
    ) -> Self {
        Attachment {
            form_id: form_id.into(),
            inter_id: inter_id.into(),
            bill_no: bill_no.into(),
            file_name: file_name.into(),
            alias: None,
            bytes,
        }
    }
}

#[derive(Deserialize)]
struct UploadAnswer {
    #[serde(rename = "FileId", default, deserialize_with = "de::string")]
    file_id: String,
}

#[derive(Deserialize)]
struct DownloadAnswer {
    #[serde(rename = "FilePart", default, deserialize_with = "de::string")]
    file_part: String,
    #[serde(rename = "IsLast", default, deserialize_with = "de::bool")]
    is_last: bool,
}

impl Client {
    /// Uploads an attachment in chunks (see
    /// [`ClientBuilder::attachment_chunk_bytes`](crate::ClientBuilder::attachment_chunk_bytes))
    /// and returns the server's file id.
    pub async fn upload_attachment(&self, file: &Attachment) -> Result<String> {
        if file.file_name.trim().is_empty() {
            return Err(Error::InvalidInput("attachment file name is empty".into()));
        }
        crate::form::check_form_id(&file.form_id)?;
        let service = service::dynamic_form("AttachmentUpload");
        let chunk = self.settings.attachment_chunk_bytes;
        let mut chunks: Vec<&[u8]> = file.bytes.chunks(chunk).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        let last = chunks.len() - 1;
        let mut file_id = String::new();
        for (i, part) in chunks.into_iter().enumerate() {
            let body = json!({"data": {
                "FileName": file.file_name,
                "FormId": file.form_id,
                "IsLast": i == last,
                "InterId": file.inter_id,
                "BillNO": file.bill_no,
                "AliasFileName": file.alias.clone().unwrap_or_else(|| file.file_name.clone()),
                "FileId": file_id,
                "SendByte": BASE64.encode(part),
            }});
            let call = Call {
                service: &service,
                body,
                idempotency: Idempotency::NonIdempotent,
                form_id: Some(&file.form_id),
            };
            let answer = self.transport.call(call).await?;
            let decoded: UploadAnswer = written(
                "AttachmentUpload",
                (|| {
                    let raw = answer.clone().into_value()?;
                    let result = raw.get("Result").cloned().unwrap_or_default();
                    decode_value_at(&result, "Result", &answer.bytes)
                })(),
            )?;
            if !decoded.file_id.is_empty() {
                file_id = decoded.file_id;
            }
        }
        if file_id.is_empty() {
            return Err(Error::Decode {
                path: "Result.FileId".into(),
                message: "the server named no file id".into(),
                snippet: String::new(),
            });
        }
        Ok(file_id)
    }

    /// Downloads an attachment by file id, chunk by chunk.
    pub async fn download_attachment(&self, file_id: &str) -> Result<Vec<u8>> {
        if file_id.trim().is_empty() {
            return Err(Error::InvalidInput("file id is empty".into()));
        }
        let service = service::dynamic_form("AttachmentDownLoad");
        let mut out = Vec::new();
        loop {
            let call = Call {
                service: &service,
                body: json!({"data": {"FileId": file_id, "StartIndex": out.len()}}),
                idempotency: Idempotency::Idempotent,
                form_id: None,
            };
            let answer = self.transport.call(call).await?;
            let raw = answer.clone().into_value()?;
            let result = raw.get("Result").cloned().unwrap_or_default();
            let part: DownloadAnswer = decode_value_at(&result, "Result", &answer.bytes)?;
            let bytes = BASE64
                .decode(part.file_part.trim())
                .map_err(|e| Error::Decode {
                    path: "Result.FilePart".into(),
                    message: e.to_string(),
                    snippet: String::new(),
                })?;
            if bytes.is_empty() && !part.is_last {
                return Err(Error::Decode {
                    path: "Result.FilePart".into(),
                    message: "an empty chunk that is not the last one".into(),
                    snippet: String::new(),
                });
            }
            out.extend_from_slice(&bytes);
            if part.is_last {
                return Ok(out);
            }
        }
    }
}
