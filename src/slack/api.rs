//! The Slack Web API, through slack-morphism, reduced to the calls warroom makes and to the
//! three outcomes a durable job cares about: done, retry (maybe after a given time), give up.

use std::sync::Arc;
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use secrecy::{ExposeSecret, SecretString};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

type Connector = SlackClientHyperConnector<HttpsConnector<HttpConnector>>;

/// Why a Slack call did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SlackCallError {
    /// HTTP 429: try again after `Retry-After`.
    #[error("rate limited by Slack (retry after {0:?})")]
    RateLimited(Option<Duration>),
    /// Slack answered `ok: false` with this error code.
    #[error("Slack API error `{0}`")]
    Api(String),
    /// Network failure, timeout or a 5xx: worth retrying.
    #[error("Slack unreachable or failing: {0}")]
    Transient(String),
}

impl SlackCallError {
    /// Whether trying the same call again later can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            SlackCallError::RateLimited(_) | SlackCallError::Transient(_) => true,
            SlackCallError::Api(code) => matches!(
                code.as_str(),
                "internal_error"
                    | "fatal_error"
                    | "service_unavailable"
                    | "request_timeout"
                    | "ratelimited"
                    | "team_added_to_org"
            ),
        }
    }
}

impl From<SlackClientError> for SlackCallError {
    fn from(e: SlackClientError) -> Self {
        match e {
            SlackClientError::RateLimitError(r) => SlackCallError::RateLimited(r.retry_after),
            SlackClientError::ApiError(a) => SlackCallError::Api(a.code),
            SlackClientError::HttpError(h) => {
                SlackCallError::Transient(format!("HTTP {}", h.status_code))
            }
            other => SlackCallError::Transient(first_line(&other.to_string())),
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect()
}

pub type SlackResult<T> = Result<T, SlackCallError>;

/// A posted message: channel and `ts`.
#[derive(Debug, Clone, PartialEq)]
pub struct PostedMessage {
    pub channel: String,
    pub ts: String,
}

/// A message fetched back from Slack.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedMessage {
    pub user: Option<String>,
    pub text: String,
}

/// A channel as `conversations.list` describes it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct ListedChannel {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// The user who created it (for the bot's channels, the bot's user id).
    #[serde(default)]
    pub creator: Option<String>,
    #[serde(default)]
    pub is_archived: bool,
}

/// The bot's user and bot ids (`auth.test`).
#[derive(Debug, Clone, PartialEq)]
pub struct BotIdentity {
    pub user_id: String,
    pub bot_id: Option<String>,
}

impl BotIdentity {
    /// Whether a message (as `conversations.history` gives it) was posted by the bot: its
    /// `user` is the bot user, or its `bot_id` the bot.
    fn posted(&self, message: &serde_json::Value) -> bool {
        message["user"].as_str() == Some(self.user_id.as_str())
            || (self.bot_id.is_some() && message["bot_id"].as_str() == self.bot_id.as_deref())
    }
}

/// Pages of `conversations.list` read at most while looking for a channel by name
/// (200 channels each).
const MAX_LIST_PAGES: usize = 50;
/// Pages of `conversations.history` read at most while looking for a message the bot posted
/// (200 messages each).
const MAX_HISTORY_PAGES: usize = 5;

/// One page of a cursor-paginated list (`conversations.list`, `conversations.history`), read
/// leniently: only the items as JSON and the cursor. Other apps' message metadata may have
/// any shape, and must not make the bot's own messages unreadable.
#[derive(serde::Deserialize)]
struct Page {
    #[serde(default)]
    channels: Vec<serde_json::Value>,
    #[serde(default)]
    messages: Vec<serde_json::Value>,
    #[serde(default)]
    response_metadata: Option<PageCursor>,
}

#[derive(serde::Deserialize)]
struct PageCursor {
    #[serde(default)]
    next_cursor: Option<String>,
}

/// The bot's Slack Web API client.
#[derive(Clone)]
pub struct SlackApi {
    client: Arc<SlackClient<Connector>>,
    token: SlackApiToken,
    timeout: Duration,
    /// Who the bot is (`auth.test`), asked once.
    identity: Arc<tokio::sync::OnceCell<BotIdentity>>,
}

impl std::fmt::Debug for SlackApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SlackApi { .. }")
    }
}

impl SlackApi {
    /// A client for the Web API at `api_url` (`https://slack.com/api/`, or a local emulator
    /// over plain HTTP).
    pub fn new(api_url: &str, bot_token: &SecretString) -> std::io::Result<SlackApi> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()?
            .https_or_http()
            .enable_http1()
            .build();
        let connector =
            SlackClientHyperConnector::with_connector(https).with_slack_api_url(api_url);
        Ok(SlackApi {
            client: Arc::new(SlackClient::new(connector)),
            token: SlackApiToken::new(bot_token.expose_secret().to_string().into()),
            timeout: Duration::from_secs(20),
            identity: Arc::new(tokio::sync::OnceCell::new()),
        })
    }

    async fn call<T, F>(&self, f: F) -> SlackResult<T>
    where
        F: std::future::Future<Output = Result<T, SlackClientError>>,
    {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(result) => result.map_err(SlackCallError::from),
            Err(_) => Err(SlackCallError::Transient(format!(
                "no answer within {:?}",
                self.timeout
            ))),
        }
    }

    /// `conversations.create` (public channel). Returns the channel id and name.
    pub async fn create_channel(&self, name: &str) -> SlackResult<(String, String)> {
        let session = self.client.open_session(&self.token);
        let req = SlackApiConversationsCreateRequest::new(name.to_string()).with_is_private(false);
        let res = self.call(session.conversations_create(&req)).await?;
        let id = res.channel.id.to_string();
        let name = res.channel.name.unwrap_or_else(|| name.to_string());
        Ok((id, name))
    }

    /// Who the bot is, from `auth.test` the first time and remembered after.
    pub async fn identity(&self) -> SlackResult<BotIdentity> {
        self.identity
            .get_or_try_init(|| async {
                let session = self.client.open_session(&self.token);
                let res = self.call(session.auth_test()).await?;
                Ok(BotIdentity {
                    user_id: res.user_id.to_string(),
                    bot_id: res.bot_id.map(|b| b.to_string()),
                })
            })
            .await
            .cloned()
    }

    /// The channel named exactly `name` among those the bot can see (public channels and
    /// private ones it is in, archived ones included): `conversations.list` page by page,
    /// at most [`MAX_LIST_PAGES`] pages.
    pub async fn find_channel_by_name(&self, name: &str) -> SlackResult<Option<ListedChannel>> {
        let params = [
            ("types", "public_channel,private_channel"),
            ("exclude_archived", "false"),
        ];
        let found = self
            .find_in_pages("conversations.list", &params, MAX_LIST_PAGES, |page| {
                page.channels
                    .into_iter()
                    .filter_map(|c| serde_json::from_value::<ListedChannel>(c).ok())
                    .find(|c| c.name == name)
            })
            .await?;
        if found.is_none() {
            tracing::debug!(name, "no visible channel has this name");
        }
        Ok(found)
    }

    /// The `ts` of the newest message in `channel` that the bot posted with message metadata
    /// of `event_type` whose payload has every field of `payload`.
    pub async fn find_posted(
        &self,
        channel: &str,
        event_type: &str,
        payload: &[(&str, &str)],
    ) -> SlackResult<Option<String>> {
        self.find_own_message(channel, |m| {
            m["metadata"]["event_type"].as_str() == Some(event_type)
                && payload
                    .iter()
                    .all(|(key, value)| m["metadata"]["event_payload"][key].as_str() == Some(value))
        })
        .await
    }

    /// The `ts` of the newest message in `channel` that shares a file the bot uploaded with
    /// the title `title` (a file upload carries no message metadata).
    pub async fn find_shared_file(
        &self,
        channel: &str,
        title: &str,
    ) -> SlackResult<Option<String>> {
        self.find_own_message(channel, |m| {
            m["files"]
                .as_array()
                .is_some_and(|files| files.iter().any(|f| f["title"].as_str() == Some(title)))
        })
        .await
    }

    /// The `ts` of the newest message in `channel` that the bot posted and `wanted` accepts
    /// (`conversations.history` with `include_all_metadata`, newest first, at most
    /// [`MAX_HISTORY_PAGES`] pages).
    async fn find_own_message(
        &self,
        channel: &str,
        wanted: impl Fn(&serde_json::Value) -> bool,
    ) -> SlackResult<Option<String>> {
        let bot = self.identity().await?;
        let params = [("channel", channel), ("include_all_metadata", "true")];
        self.find_in_pages(
            "conversations.history",
            &params,
            MAX_HISTORY_PAGES,
            |page| {
                page.messages
                    .iter()
                    .find(|m| bot.posted(m) && wanted(m))
                    .and_then(|m| m["ts"].as_str())
                    .map(str::to_string)
            },
        )
        .await
    }

    /// Reads a cursor-paginated `GET` method, 200 items a page and at most `max_pages` pages,
    /// until `find` finds what it looks for in a page.
    async fn find_in_pages<T>(
        &self,
        method: &str,
        params: &[(&str, &str)],
        max_pages: usize,
        mut find: impl FnMut(Page) -> Option<T>,
    ) -> SlackResult<Option<T>> {
        let session = self.client.open_session(&self.token);
        let mut cursor: Option<String> = None;
        for _ in 0..max_pages {
            let mut query: Vec<(&str, Option<String>)> = params
                .iter()
                .map(|(k, v)| (*k, Some(v.to_string())))
                .collect();
            query.push(("limit", Some("200".to_string())));
            query.push(("cursor", cursor.take()));
            let page: Page = self
                .call(session.http_session_api.http_get(method, &query, None))
                .await?;
            let next = page
                .response_metadata
                .as_ref()
                .and_then(|m| m.next_cursor.clone())
                .filter(|c| !c.trim().is_empty());
            if let Some(found) = find(page) {
                return Ok(Some(found));
            }
            match next {
                Some(next) => cursor = Some(next),
                None => return Ok(None),
            }
        }
        tracing::warn!(method, "stopped looking after {max_pages} pages");
        Ok(None)
    }

    /// `conversations.invite`. Users already in the channel are not an error.
    pub async fn invite(&self, channel: &str, users: &[String]) -> SlackResult<()> {
        if users.is_empty() {
            return Ok(());
        }
        let session = self.client.open_session(&self.token);
        let req = SlackApiConversationsInviteRequest::new(
            channel.into(),
            users.iter().map(|u| SlackUserId::new(u.clone())).collect(),
        );
        match self.call(session.conversations_invite(&req)).await {
            Ok(_) => Ok(()),
            Err(SlackCallError::Api(code))
                if code == "already_in_channel" || code == "cant_invite_self" =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// `conversations.setTopic`.
    pub async fn set_topic(&self, channel: &str, topic: &str) -> SlackResult<()> {
        let session = self.client.open_session(&self.token);
        let req = SlackApiConversationsSetTopicRequest::new(channel.into(), topic.to_string());
        self.call(session.conversations_set_topic(&req)).await?;
        Ok(())
    }

    /// `chat.postMessage`.
    pub async fn post(
        &self,
        channel: &str,
        content: SlackMessageContent,
    ) -> SlackResult<PostedMessage> {
        let session = self.client.open_session(&self.token);
        let req = SlackApiChatPostMessageRequest::new(channel.into(), content)
            .with_unfurl_links(false)
            .with_unfurl_media(false);
        let res = self.call(session.chat_post_message(&req)).await?;
        Ok(PostedMessage {
            channel: res.channel.to_string(),
            ts: res.ts.to_string(),
        })
    }

    /// `chat.update` of a message the bot posted.
    pub async fn update(
        &self,
        channel: &str,
        ts: &str,
        content: SlackMessageContent,
    ) -> SlackResult<()> {
        let session = self.client.open_session(&self.token);
        let req = SlackApiChatUpdateRequest::new(channel.into(), content, ts.to_string().into());
        self.call(session.chat_update(&req)).await?;
        Ok(())
    }

    /// `conversations.open` with one user: the DM channel id.
    pub async fn open_dm(&self, user: &str) -> SlackResult<String> {
        let session = self.client.open_session(&self.token);
        let req = SlackApiConversationsOpenRequest::new().with_users(vec![user.to_string().into()]);
        let res = self.call(session.conversations_open(&req)).await?;
        Ok(res.channel.id.to_string())
    }

    /// Posts to a `response_url` (the reply to a slash command or interaction). Slack shows
    /// such replies only to the user who acted (ephemeral) unless told otherwise.
    pub async fn respond(
        &self,
        response_url: &str,
        content: SlackMessageContent,
    ) -> SlackResult<()> {
        let url = url::Url::parse(response_url)
            .map_err(|e| SlackCallError::Api(format!("invalid response_url: {e}")))?;
        let req = SlackApiPostWebhookMessageRequest::new(content);
        self.call(self.client.post_webhook_message(&url, &req))
            .await?;
        Ok(())
    }

    /// The message at `ts` in `channel` (a channel message, or else a thread reply).
    pub async fn message(&self, channel: &str, ts: &str) -> SlackResult<Option<FetchedMessage>> {
        let session = self.client.open_session(&self.token);
        let req = SlackApiConversationsHistoryRequest::new()
            .with_channel(channel.into())
            .with_latest(ts.to_string().into())
            .with_inclusive(true)
            .with_limit(1);
        let res = self.call(session.conversations_history(&req)).await?;
        let found = res
            .messages
            .into_iter()
            .find(|m| m.origin.ts.to_string() == ts);
        let found = match found {
            Some(m) => Some(m),
            None => {
                let req =
                    SlackApiConversationsRepliesRequest::new(channel.into(), ts.to_string().into())
                        .with_latest(ts.to_string().into())
                        .with_inclusive(true)
                        .with_limit(1);
                match self.call(session.conversations_replies(&req)).await {
                    Ok(res) => res
                        .messages
                        .into_iter()
                        .find(|m| m.origin.ts.to_string() == ts),
                    Err(SlackCallError::Api(code)) if code == "thread_not_found" => None,
                    Err(e) => return Err(e),
                }
            }
        };
        Ok(found.map(|m| FetchedMessage {
            user: m
                .sender
                .user
                .map(|u| u.to_string())
                .or_else(|| m.sender.username.clone()),
            text: m.content.text.unwrap_or_default(),
        }))
    }

    /// `chat.getPermalink`.
    pub async fn permalink(&self, channel: &str, ts: &str) -> SlackResult<String> {
        let session = self.client.open_session(&self.token);
        let req = SlackApiChatGetPermalinkRequest::new(channel.into(), ts.to_string().into());
        let res = self.call(session.chat_get_permalink(&req)).await?;
        Ok(res.permalink.to_string())
    }

    /// `chat.postEphemeral`: a message only `user` sees, in `channel`.
    pub async fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        content: SlackMessageContent,
    ) -> SlackResult<()> {
        let session = self.client.open_session(&self.token);
        let req =
            SlackApiChatPostEphemeralRequest::new(channel.into(), user.to_string().into(), content);
        self.call(session.chat_post_ephemeral(&req)).await?;
        Ok(())
    }

    /// `views.open`: shows a modal (within 3 s of the trigger).
    pub async fn open_view(&self, trigger_id: &str, view: SlackView) -> SlackResult<()> {
        let session = self.client.open_session(&self.token);
        let req = SlackApiViewsOpenRequest::new(trigger_id.to_string().into(), view);
        self.call(session.views_open(&req)).await?;
        Ok(())
    }

    /// Uploads a text file into `channel` (files.getUploadURLExternal, the upload, then
    /// files.completeUploadExternal). Returns the file id.
    pub async fn upload_text_file(
        &self,
        channel: &str,
        filename: &str,
        title: &str,
        content: &str,
        comment: &str,
    ) -> SlackResult<String> {
        let session = self.client.open_session(&self.token);
        let url_req =
            SlackApiFilesGetUploadUrlExternalRequest::new(filename.to_string(), content.len());
        let target = self.call(session.get_upload_url_external(&url_req)).await?;
        let upload = SlackApiFilesUploadViaUrlRequest::new(
            target.upload_url.clone(),
            content.as_bytes().to_vec(),
            "text/markdown".to_string(),
        );
        match self.call(session.files_upload_via_url(&upload)).await {
            Ok(_) => {}
            // The upload endpoint answers plain text ("OK - 123"), which is not JSON.
            Err(SlackCallError::Transient(e)) if e.contains("JSON") || e.contains("json") => {}
            Err(e) => return Err(e),
        }
        let complete =
            SlackApiFilesCompleteUploadExternalRequest::new(vec![SlackApiFilesComplete::new(
                target.file_id.clone(),
            )
            .with_title(title.to_string())])
            .with_channel_id(channel.into())
            .with_initial_comment(comment.to_string());
        self.call(session.files_complete_upload_external(&complete))
            .await?;
        Ok(target.file_id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_bot_posted_what_carries_its_user_or_bot_id() {
        let bot = BotIdentity {
            user_id: "UBOT".into(),
            bot_id: Some("B1".into()),
        };
        assert!(bot.posted(&json!({"user": "UBOT", "bot_id": "B1"})));
        assert!(bot.posted(&json!({"user": "UBOT"})));
        assert!(bot.posted(&json!({"bot_id": "B1", "subtype": "bot_message"})));
        // Another app's message with the same metadata, or a person's, is not the bot's.
        assert!(!bot.posted(&json!({"user": "UOTHERBOT", "bot_id": "B2"})));
        assert!(!bot.posted(&json!({"user": "U0ALICE"})));
        assert!(!bot.posted(&json!({})));
        let without_bot_id = BotIdentity {
            user_id: "UBOT".into(),
            bot_id: None,
        };
        assert!(!without_bot_id.posted(&json!({"bot_id": null})));
        assert!(!without_bot_id.posted(&json!({})));
    }
}
