//! Invalidate (作废), recover, delete, and change owner.

use serde_json::{Map, Value};

use super::{OBJECT_KEY, write};
use crate::client::Client;
use crate::crm::{Base, WriteResult, check_id, check_object, data_path};
use crate::error::{Error, Result};

/// Invalidate (作废) one record: it moves to the recycle bin and can be recovered. Created by
/// [`Client::invalid`].
#[derive(Debug)]
#[must_use = "an invalidation does nothing until you call .send()"]
pub struct Invalid<'c> {
    base: Base<'c>,
    id: String,
}

impl<'c> Invalid<'c> {
    pub(crate) fn new(client: &'c Client, object: String, id: String) -> Self {
        Invalid {
            base: Base::new(client, object),
            id,
        }
    }

    common!();

    /// Invalidates the record. Never resent once it may have reached the server.
    pub async fn send(self) -> Result<WriteResult> {
        check_object(&self.base.object)?;
        check_id(&self.id, "record id (object_data_id)")?;
        let mut data = Map::new();
        data.insert(OBJECT_KEY.into(), self.base.object.clone().into());
        data.insert("object_data_id".into(), self.id.clone().into());
        let path = data_path(&self.base.object, "invalid");
        write(
            self.base.client,
            "crm.invalid",
            &path,
            &self.base.object,
            self.base.body(data),
        )
        .await
    }
}

/// The id-list operations: batch invalidate (custom objects), delete, recover.
macro_rules! id_list_op {
    ($name:ident, $what:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug)]
        #[must_use = "nothing happens until you call .send()"]
        pub struct $name<'c> {
            base: Base<'c>,
            ids: Vec<String>,
        }

        impl<'c> $name<'c> {
            pub(crate) fn new(client: &'c Client, object: String) -> Self {
                $name {
                    base: Base::new(client, object),
                    ids: Vec::new(),
                }
            }

            common!();

            /// Adds a record id.
            pub fn id(mut self, id: impl Into<String>) -> Self {
                self.ids.push(id.into());
                self
            }

            /// Adds record ids.
            pub fn ids<I, S>(mut self, ids: I) -> Self
            where
                I: IntoIterator<Item = S>,
                S: Into<String>,
            {
                self.ids.extend(ids.into_iter().map(Into::into));
                self
            }

            fn data(&self) -> Result<Map<String, Value>> {
                check_object(&self.base.object)?;
                if self.ids.is_empty() {
                    return Err(Error::InvalidInput(concat!($what, " of no records").into()));
                }
                for id in &self.ids {
                    check_id(id, "a record id")?;
                }
                let mut data = Map::new();
                data.insert(OBJECT_KEY.into(), self.base.object.clone().into());
                data.insert("idList".into(), self.ids.clone().into());
                Ok(data)
            }
        }
    };
}

id_list_op!(
    Delete,
    "delete",
    "Delete invalidated records for good (records must be invalidated first). Created by [`Client::delete`].\n\n```no_run\n# async fn run(client: fxiaoke_sdk::Client) -> Result<(), fxiaoke_sdk::Error> {\nclient.invalid(\"AccountObj\", \"5dc4cefa038eaa0001c0586f\").send().await?;\nclient.delete(\"AccountObj\").id(\"5dc4cefa038eaa0001c0586f\").send().await?;\n# Ok(()) }\n```"
);
id_list_op!(
    Recover,
    "recover",
    "Bring invalidated records back. Created by [`Client::recover`]."
);
id_list_op!(
    InvalidMany,
    "invalidate",
    "Invalidate several records of a **custom** object at once (`/cgi/crm/custom/data/invalid`, the only batch form). Created by [`Client::invalid_many`]."
);

impl Delete<'_> {
    /// Deletes the records. Never resent once it may have reached the server.
    pub async fn send(self) -> Result<WriteResult> {
        let data = self.data()?;
        let path = data_path(&self.base.object, "delete");
        write(
            self.base.client,
            "crm.delete",
            &path,
            &self.base.object,
            self.base.body(data),
        )
        .await
    }
}

impl Recover<'_> {
    /// Recovers the records. Never resent once it may have reached the server.
    pub async fn send(self) -> Result<WriteResult> {
        let data = self.data()?;
        let path = data_path(&self.base.object, "recover");
        write(
            self.base.client,
            "crm.recover",
            &path,
            &self.base.object,
            self.base.body(data),
        )
        .await
    }
}

impl InvalidMany<'_> {
    /// Invalidates the records. Never resent once it may have reached the server.
    pub async fn send(self) -> Result<WriteResult> {
        if !crate::crm::is_custom_object(&self.base.object) {
            return Err(Error::InvalidInput(format!(
                "batch invalidation exists for custom objects (`…__c`) only; invalidate `{}` records one by one",
                self.base.object
            )));
        }
        let data = self.data()?;
        write(
            self.base.client,
            "crm.invalid_many",
            "/cgi/crm/custom/data/invalid",
            &self.base.object,
            self.base.body(data),
        )
        .await
    }
}

/// Give records new owners. Created by [`Client::change_owner`].
///
/// ```no_run
/// # async fn run(client: fxiaoke_sdk::Client) -> Result<(), fxiaoke_sdk::Error> {
/// client
///     .change_owner("LeadsObj")
///     .record("5dc4cefa038eaa0001c0586f", ["FSUID_FEDCBA9876543210FEDCBA9876543210"])
///     .send()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a change of owner does nothing until you call .send()"]
pub struct ChangeOwner<'c> {
    base: Base<'c>,
    records: Vec<(String, Vec<String>)>,
}

impl<'c> ChangeOwner<'c> {
    pub(crate) fn new(client: &'c Client, object: String) -> Self {
        ChangeOwner {
            base: Base::new(client, object),
            records: Vec::new(),
        }
    }

    common!();

    /// Gives record `id` the owners `owners` (a list, as the API wants, usually of one).
    pub fn record<I, S>(mut self, id: impl Into<String>, owners: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.records
            .push((id.into(), owners.into_iter().map(Into::into).collect()));
        self
    }

    /// Changes the owners. Never resent once it may have reached the server.
    pub async fn send(self) -> Result<WriteResult> {
        check_object(&self.base.object)?;
        if self.records.is_empty() {
            return Err(Error::InvalidInput("change of owner of no records".into()));
        }
        let mut list = Vec::with_capacity(self.records.len());
        for (id, owners) in &self.records {
            check_id(id, "a record id")?;
            if owners.is_empty() || owners.iter().any(|o| o.trim().is_empty()) {
                return Err(Error::InvalidInput(format!("no valid owner for `{id}`")));
            }
            list.push(serde_json::json!({"objectDataId": id, "ownerId": owners}));
        }
        let mut data = Map::new();
        data.insert(OBJECT_KEY.into(), self.base.object.clone().into());
        // Capital D, as the documentation and most clients send it.
        data.insert("Data".into(), Value::Array(list));
        let path = data_path(&self.base.object, "changeOwner");
        write(
            self.base.client,
            "crm.change_owner",
            &path,
            &self.base.object,
            self.base.body(data),
        )
        .await
    }
}
