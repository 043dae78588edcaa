//! The org directory: employees and departments. These endpoints take flat bodies (no
//! `data`) and no operator.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::client::Client;
use crate::de;
use crate::error::{Error, Result};
use crate::transport::{AuthFields, Call};

/// An employee, as the user endpoints return one. Every field but the id is optional: each
/// endpoint returns a different subset (`simpleList` only ids and names).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct User {
    /// `openUserId` (`FSUID_…`): what `currentOpenUserId` and owner lists take.
    #[serde(rename = "openUserId", deserialize_with = "de::text")]
    pub open_user_id: String,
    /// `account`.
    #[serde(default, deserialize_with = "de::opt_text")]
    pub account: Option<String>,
    /// `name`.
    #[serde(default, deserialize_with = "de::opt_text")]
    pub name: Option<String>,
    /// `nickName`.
    #[serde(rename = "nickName", default, deserialize_with = "de::opt_text")]
    pub nick_name: Option<String>,
    /// `isStop`: the employee is disabled.
    #[serde(rename = "isStop", default, deserialize_with = "de::opt_bool")]
    pub is_stop: Option<bool>,
    /// `status` (`getByMobile`: `"NORMAL"`, …).
    #[serde(default, deserialize_with = "de::opt_text")]
    pub status: Option<String>,
    /// `email`.
    #[serde(default, deserialize_with = "de::opt_text")]
    pub email: Option<String>,
    /// `mobile`.
    #[serde(default, deserialize_with = "de::opt_text")]
    pub mobile: Option<String>,
    /// `gender`: `M` or `F`.
    #[serde(default, deserialize_with = "de::opt_text")]
    pub gender: Option<String>,
    /// `position`.
    #[serde(default, deserialize_with = "de::opt_text")]
    pub position: Option<String>,
    /// `departmentIds`.
    #[serde(rename = "departmentIds", default, deserialize_with = "de::i64_list")]
    pub department_ids: Vec<i64>,
    /// `mainDepartmentId`.
    #[serde(rename = "mainDepartmentId", default, deserialize_with = "de::opt_i64")]
    pub main_department_id: Option<i64>,
    /// `mainDepartmentIds` (`getByMobile`).
    #[serde(
        rename = "mainDepartmentIds",
        default,
        deserialize_with = "de::i64_list"
    )]
    pub main_department_ids: Vec<i64>,
    /// `attachingDepartmentIds`.
    #[serde(
        rename = "attachingDepartmentIds",
        default,
        deserialize_with = "de::i64_list"
    )]
    pub attaching_department_ids: Vec<i64>,
    /// `employeeNumber`.
    #[serde(rename = "employeeNumber", default, deserialize_with = "de::opt_text")]
    pub employee_number: Option<String>,
    /// `hireDate` (`yyyy-MM-dd` text, or empty).
    #[serde(rename = "hireDate", default, deserialize_with = "de::opt_text")]
    pub hire_date: Option<String>,
    /// `createTime`.
    #[serde(rename = "createTime", default, with = "de::opt_epoch_millis")]
    pub create_time: Option<DateTime<Utc>>,
    /// `leaderId`: the manager's `openUserId`.
    #[serde(rename = "leaderId", default, deserialize_with = "de::opt_text")]
    pub leader_id: Option<String>,
    /// Any other key (`profileImageUrl`, `birthDate`, `startWorkDate`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A department, from `/cgi/department/list`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Department {
    /// `id` (999999 is the whole company in the documented examples; another document says
    /// the root is 0).
    #[serde(deserialize_with = "id")]
    pub id: i64,
    /// `name`.
    #[serde(default, deserialize_with = "de::text")]
    pub name: String,
    /// `parentId`.
    #[serde(rename = "parentId", default, deserialize_with = "de::opt_i64")]
    pub parent_id: Option<i64>,
    /// `isStop`.
    #[serde(rename = "isStop", default, deserialize_with = "de::opt_bool")]
    pub is_stop: Option<bool>,
    /// `order`.
    #[serde(default, deserialize_with = "de::opt_i64")]
    pub order: Option<i64>,
    /// Any other key.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    use serde::de::Error as _;
    de::opt_i64(d)?.ok_or_else(|| D::Error::custom("the department has no id"))
}

/// One page of `/cgi/user/get/batchByUpdTime`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct UsersPage {
    /// `pageNumber` (from 1).
    #[serde(rename = "pageNumber", default, deserialize_with = "de::opt_i64")]
    pub page_number: Option<i64>,
    /// `pageCount`.
    #[serde(rename = "pageCount", default, deserialize_with = "de::opt_i64")]
    pub page_count: Option<i64>,
    /// `totalCount`.
    #[serde(rename = "totalCount", default, deserialize_with = "de::opt_i64")]
    pub total_count: Option<i64>,
    /// `lastChangedTime`: the latest change among the employees.
    #[serde(rename = "lastChangedTime", default, with = "de::opt_epoch_millis")]
    pub last_changed_time: Option<DateTime<Utc>>,
    /// `employees` (crm-cli reads `empList` here; both are accepted).
    #[serde(default, alias = "empList", deserialize_with = "users")]
    pub employees: Vec<User>,
}

fn users<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<User>, D::Error> {
    Ok(Option::<Vec<User>>::deserialize(d)?.unwrap_or_default())
}

/// `{"userList": […]}` / `{"empList": […]}`.
#[derive(Debug, Deserialize)]
pub(crate) struct UserListAnswer {
    #[serde(
        rename = "userList",
        alias = "empList",
        default,
        deserialize_with = "users"
    )]
    pub(crate) users: Vec<User>,
}

/// `{"departments": […]}`.
#[derive(Debug, Deserialize)]
pub(crate) struct DepartmentListAnswer {
    #[serde(default)]
    pub(crate) departments: Vec<Department>,
}

async fn send_org<T: serde::de::DeserializeOwned>(
    client: &Client,
    operation: &'static str,
    path: &str,
    body: Map<String, Value>,
) -> Result<T> {
    let call = Call::new(operation, path, body).auth(AuthFields::Corp);
    client.transport.call(call).await?.decode()
}

/// The employees with a mobile number. Created by [`Client::user_by_mobile`].
///
/// ```no_run
/// # async fn run(client: fxiaoke_sdk::Client) -> Result<(), fxiaoke_sdk::Error> {
/// let operator = client.user_by_mobile("13800000000").send().await?
///     .into_iter().next().map(|u| u.open_user_id);
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "nothing is sent until you call .send()"]
pub struct UserByMobile<'c> {
    client: &'c Client,
    mobile: String,
}

impl<'c> UserByMobile<'c> {
    pub(crate) fn new(client: &'c Client, mobile: String) -> Self {
        UserByMobile { client, mobile }
    }

    /// The employees (`empList`); empty when nobody has the number.
    pub async fn send(self) -> Result<Vec<User>> {
        if self.mobile.trim().is_empty() {
            return Err(Error::InvalidInput("mobile number is empty".into()));
        }
        let mut body = Map::new();
        body.insert("mobile".into(), self.mobile.into());
        let answer: UserListAnswer = send_org(
            self.client,
            "org.user_by_mobile",
            "/cgi/user/getByMobile",
            body,
        )
        .await?;
        Ok(answer.users)
    }
}

/// One employee by `openUserId`. Created by [`Client::user`].
#[derive(Debug)]
#[must_use = "nothing is sent until you call .send()"]
pub struct UserGet<'c> {
    client: &'c Client,
    open_user_id: String,
    show_department_ids_detail: Option<bool>,
}

impl<'c> UserGet<'c> {
    pub(crate) fn new(client: &'c Client, open_user_id: String) -> Self {
        UserGet {
            client,
            open_user_id,
            show_department_ids_detail: None,
        }
    }

    /// `showDepartmentIdsDetail`.
    pub fn show_department_ids_detail(mut self, on: bool) -> Self {
        self.show_department_ids_detail = Some(on);
        self
    }

    /// The employee (fields at the top level of the answer).
    pub async fn send(self) -> Result<User> {
        if self.open_user_id.trim().is_empty() {
            return Err(Error::InvalidInput("openUserId is empty".into()));
        }
        let mut body = Map::new();
        body.insert("openUserId".into(), self.open_user_id.into());
        if let Some(on) = self.show_department_ids_detail {
            body.insert("showDepartmentIdsDetail".into(), on.into());
        }
        send_org(self.client, "org.user_get", "/cgi/user/get", body).await
    }
}

/// The employees of a department. Created by [`Client::users`].
///
/// ```no_run
/// # async fn run(client: fxiaoke_sdk::Client) -> Result<(), fxiaoke_sdk::Error> {
/// let everyone = client.users(999_999).fetch_child(true).send().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "nothing is sent until you call .send()"]
pub struct UserList<'c> {
    client: &'c Client,
    department_id: i64,
    fetch_child: Option<bool>,
    show_department_ids_detail: Option<bool>,
}

impl<'c> UserList<'c> {
    pub(crate) fn new(client: &'c Client, department_id: i64) -> Self {
        UserList {
            client,
            department_id,
            fetch_child: None,
            show_department_ids_detail: None,
        }
    }

    /// `fetchChild`: include the sub-departments.
    pub fn fetch_child(mut self, on: bool) -> Self {
        self.fetch_child = Some(on);
        self
    }

    /// `showDepartmentIdsDetail`.
    pub fn show_department_ids_detail(mut self, on: bool) -> Self {
        self.show_department_ids_detail = Some(on);
        self
    }

    /// The employees (`userList`).
    pub async fn send(self) -> Result<Vec<User>> {
        let mut body = Map::new();
        body.insert("departmentId".into(), self.department_id.into());
        if let Some(on) = self.fetch_child {
            body.insert("fetchChild".into(), on.into());
        }
        if let Some(on) = self.show_department_ids_detail {
            body.insert("showDepartmentIdsDetail".into(), on.into());
        }
        let answer: UserListAnswer =
            send_org(self.client, "org.user_list", "/cgi/user/list", body).await?;
        Ok(answer.users)
    }
}

/// Ids and names of the employees of a department. Created by [`Client::users_simple`].
#[derive(Debug)]
#[must_use = "nothing is sent until you call .send()"]
pub struct UserSimpleList<'c> {
    client: &'c Client,
    department_id: i64,
    fetch_child: Option<bool>,
}

impl<'c> UserSimpleList<'c> {
    pub(crate) fn new(client: &'c Client, department_id: i64) -> Self {
        UserSimpleList {
            client,
            department_id,
            fetch_child: None,
        }
    }

    /// `fetchChild`: include the sub-departments.
    pub fn fetch_child(mut self, on: bool) -> Self {
        self.fetch_child = Some(on);
        self
    }

    /// The employees (`userList`: `openUserId`, `name`, `nickName`).
    pub async fn send(self) -> Result<Vec<User>> {
        let mut body = Map::new();
        body.insert("departmentId".into(), self.department_id.into());
        if let Some(on) = self.fetch_child {
            body.insert("fetchChild".into(), on.into());
        }
        let answer: UserListAnswer = send_org(
            self.client,
            "org.user_simple_list",
            "/cgi/user/simpleList",
            body,
        )
        .await?;
        Ok(answer.users)
    }
}

/// The largest page of [`UsersChanged`].
pub const MAX_USERS_PAGE_SIZE: u32 = 1000;

/// Employees changed in a time range. Created by [`Client::users_changed`].
///
/// ```no_run
/// use chrono::{Duration, Utc};
/// # async fn run(client: fxiaoke_sdk::Client) -> Result<(), fxiaoke_sdk::Error> {
/// let changed = client
///     .users_changed()
///     .since(Utc::now() - Duration::days(1))
///     .page_size(1000)
///     .all()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "nothing is sent until you call .send()"]
pub struct UsersChanged<'c> {
    client: &'c Client,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    page_size: u32,
    page_number: u32,
    show_department_ids_detail: Option<bool>,
}

impl<'c> UsersChanged<'c> {
    pub(crate) fn new(client: &'c Client) -> Self {
        UsersChanged {
            client,
            start: None,
            end: None,
            page_size: 100,
            page_number: 1,
            show_department_ids_detail: None,
        }
    }

    /// `startTime`: changed at or after.
    pub fn since(mut self, start: DateTime<Utc>) -> Self {
        self.start = Some(start);
        self
    }

    /// `endTime`: changed before.
    pub fn until(mut self, end: DateTime<Utc>) -> Self {
        self.end = Some(end);
        self
    }

    /// `pageSize`, 1 to 1000 (default 100).
    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = size;
        self
    }

    /// `pageNumber`, from 1 (default 1).
    pub fn page_number(mut self, number: u32) -> Self {
        self.page_number = number;
        self
    }

    /// `showDepartmentIdsDetail`.
    pub fn show_department_ids_detail(mut self, on: bool) -> Self {
        self.show_department_ids_detail = Some(on);
        self
    }

    /// One page.
    pub async fn send(&self) -> Result<UsersPage> {
        if !(1..=MAX_USERS_PAGE_SIZE).contains(&self.page_size) {
            return Err(Error::InvalidInput(format!(
                "pageSize {} is out of range 1..={MAX_USERS_PAGE_SIZE}",
                self.page_size
            )));
        }
        if self.page_number == 0 {
            return Err(Error::InvalidInput("pageNumber starts at 1".into()));
        }
        let mut body = Map::new();
        body.insert("pageSize".into(), self.page_size.into());
        body.insert("pageNumber".into(), self.page_number.into());
        if let Some(t) = self.start {
            body.insert("startTime".into(), t.timestamp_millis().into());
        }
        if let Some(t) = self.end {
            body.insert("endTime".into(), t.timestamp_millis().into());
        }
        if let Some(on) = self.show_department_ids_detail {
            body.insert("showDepartmentIdsDetail".into(), on.into());
        }
        send_org(
            self.client,
            "org.users_changed",
            "/cgi/user/get/batchByUpdTime",
            body,
        )
        .await
    }

    /// Every page from the current page number on, until a short or empty page or the
    /// announced `pageCount`.
    pub async fn all(mut self) -> Result<Vec<User>> {
        let mut all = Vec::new();
        loop {
            let page = self.send().await?;
            let n = page.employees.len();
            all.extend(page.employees);
            let last_by_count = page
                .page_count
                .is_some_and(|c| i64::from(self.page_number) >= c);
            if n < self.page_size as usize || last_by_count {
                return Ok(all);
            }
            self.page_number += 1;
        }
    }
}

/// Every department. Created by [`Client::departments`].
#[derive(Debug)]
#[must_use = "nothing is sent until you call .send()"]
pub struct DepartmentList<'c> {
    client: &'c Client,
}

impl<'c> DepartmentList<'c> {
    pub(crate) fn new(client: &'c Client) -> Self {
        DepartmentList { client }
    }

    /// The departments.
    pub async fn send(self) -> Result<Vec<Department>> {
        let answer: DepartmentListAnswer = send_org(
            self.client,
            "org.department_list",
            "/cgi/department/list",
            Map::new(),
        )
        .await?;
        Ok(answer.departments)
    }
}
