//! Users read again by object id (`$filter=id in (…)`), a few ids a request: the changed
//! users a delta round names without their properties, and the users a full run let go as
//! unchanged whose target user then proved to be missing.

use futures_util::StreamExt;
use url::Url;

use super::client::GraphClient;
use super::error::GraphError;
use super::users::UserQuery;

/// How many ids one request names (what Graph's `in` takes).
pub(super) const IDS_A_REQUEST: usize = 15;

/// How many such requests may be under way at once.
pub(super) const REQUESTS_AT_ONCE: usize = 8;

/// The request that reads the users of `ids` whole: `select` and, with the manager
/// expanded, `expand`.
pub(super) fn url(
    client: &GraphClient,
    (select, expand): (&[String], Option<&str>),
    ids: impl IntoIterator<Item = impl AsRef<str>>,
) -> Result<Url, GraphError> {
    let mut url = client
        .root()
        .join("v1.0/users")
        .map_err(|e| GraphError::Malformed {
            what: "users".to_owned(),
            detail: e.to_string(),
        })?;
    let ids: Vec<String> = ids
        .into_iter()
        .map(|id| format!("'{}'", id.as_ref().replace('\'', "''")))
        .collect();
    url.query_pairs_mut()
        .append_pair("$select", &select.join(","))
        .append_pair("$filter", &format!("id in ({})", ids.join(",")));
    if let Some(expand) = expand {
        url.query_pairs_mut().append_pair("$expand", expand);
    }
    Ok(url)
}

/// The users of `ids` as `query` reads them (its properties, and the manager expanded
/// unless Graph reads it apart for this query), each as Graph sent it. A user Graph no
/// longer has is left out; a request that fails fails the whole.
pub async fn users_by_id(
    client: &GraphClient,
    query: &UserQuery,
    ids: &[&str],
) -> Result<Vec<serde_json::Value>, GraphError> {
    let select: Vec<String> = query
        .selection
        .selected()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let expand = match query.managers_apart() {
        true => None,
        false => query.selection.expand_param(),
    };
    let pages: Vec<Result<Vec<serde_json::Value>, GraphError>> =
        futures_util::stream::iter(ids.chunks(IDS_A_REQUEST))
            .map(|chunk| {
                let (select, expand) = (&select, expand.as_deref());
                async move {
                    let url = url(client, (select, expand), chunk)?;
                    let what = "reading users again by id";
                    let page = client.get_page(url.as_str(), false, what).await?;
                    page.value
                        .iter()
                        .map(|user| {
                            serde_json::from_str(user.get()).map_err(|e| GraphError::Malformed {
                                what: what.to_owned(),
                                detail: format!("a user that is not valid JSON ({e})"),
                            })
                        })
                        .collect()
                }
            })
            .buffer_unordered(REQUESTS_AT_ONCE)
            .collect()
            .await;
    let asked: std::collections::HashSet<&str> = ids.iter().copied().collect();
    let mut users = Vec::with_capacity(ids.len());
    for page in pages {
        // Only the users asked for: a server that sends others is not believed.
        users.extend(page?.into_iter().filter(|user| {
            user.get("id")
                .and_then(serde_json::Value::as_str)
                .is_some_and(|id| asked.contains(id))
        }));
    }
    Ok(users)
}
