//! Licence names: `assignedLicenses` holds SKU ids, which mean nothing to an admin; the
//! tenant's subscriptions (`/subscribedSkus`, read once per run) turn them into SKU part
//! numbers such as `ENTERPRISEPACK` or `SPE_E3`.

use std::collections::HashMap;

use serde_json::Value;

use super::client::GraphClient;
use super::error::GraphError;

/// The tenant's SKU part numbers by SKU id (in lower case).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Skus(HashMap<String, String>);

impl Skus {
    /// Reads the tenant's subscriptions: one request (and its next pages, if any).
    pub async fn read(client: &GraphClient) -> Result<Skus, GraphError> {
        let what = "GET /v1.0/subscribedSkus";
        let mut url =
            client
                .root()
                .join("v1.0/subscribedSkus")
                .map_err(|e| GraphError::Malformed {
                    what: what.to_owned(),
                    detail: e.to_string(),
                })?;
        url.query_pairs_mut()
            .append_pair("$select", "skuId,skuPartNumber");
        let mut skus = HashMap::new();
        let mut next = Some(url.to_string());
        while let Some(link) = next.take() {
            let page = client.get_page(&link, false, what).await?;
            for sku in page.value {
                let sku: Value =
                    serde_json::from_str(sku.get()).map_err(|e| GraphError::Malformed {
                        what: what.to_owned(),
                        detail: format!("a SKU that is not valid JSON ({e})"),
                    })?;
                if let (Some(id), Some(part)) = (
                    sku.get("skuId").and_then(Value::as_str),
                    sku.get("skuPartNumber").and_then(Value::as_str),
                ) {
                    skus.insert(id.to_ascii_lowercase(), part.to_owned());
                }
            }
            next = page.next_link;
        }
        Ok(Skus(skus))
    }

    /// A table of its own (for tests).
    pub fn of<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Skus {
        Skus(
            pairs
                .into_iter()
                .map(|(id, part)| (id.to_ascii_lowercase(), part.to_owned()))
                .collect(),
        )
    }

    /// Every SKU id and its part number, in the order of the ids.
    pub fn sorted(&self) -> Vec<(&str, &str)> {
        let mut all: Vec<(&str, &str)> = self
            .0
            .iter()
            .map(|(id, part)| (id.as_str(), part.as_str()))
            .collect();
        all.sort_unstable();
        all
    }

    /// The part number of a SKU id; `None` for a SKU the tenant does not subscribe to.
    pub fn part_number(&self, sku_id: &str) -> Option<&str> {
        self.0.get(&sku_id.to_ascii_lowercase()).map(String::as_str)
    }

    /// Puts `licenses` on `user`: the part numbers of its `assignedLicenses`, in Graph's
    /// order (a SKU the tenant no longer lists keeps its id).
    pub fn attach(&self, user: &mut Value) {
        let names: Vec<Value> = user
            .get("assignedLicenses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|l| l.get("skuId").and_then(Value::as_str))
            .map(|id| Value::from(self.part_number(id).unwrap_or(id)))
            .collect();
        if let Some(object) = user.as_object_mut() {
            object.insert("licenses".to_owned(), Value::Array(names));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sku_ids_become_part_numbers_and_unknown_ones_stay_ids() {
        let skus = Skus::of([("05E9A617-0261-4CEE-BB44-138D3EF5D965", "SPE_E3")]);
        let mut user = serde_json::json!({"id": "u", "assignedLicenses": [
            {"skuId": "05e9a617-0261-4cee-bb44-138d3ef5d965", "disabledPlans": []},
            {"skuId": "00000000-0000-0000-0000-000000000001"}
        ]});
        skus.attach(&mut user);
        assert_eq!(
            user["licenses"],
            serde_json::json!(["SPE_E3", "00000000-0000-0000-0000-000000000001"])
        );
        let mut none = serde_json::json!({"id": "v"});
        skus.attach(&mut none);
        assert_eq!(none["licenses"], serde_json::json!([]));
    }
}
