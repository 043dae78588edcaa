//! The enterprise directory: employees and departments (fxiaoke.md §3), and its endpoints.

use serde_json::{Map, Value, json};

use super::envelope::FxError;

/// One employee.
#[derive(Clone, Debug)]
pub(crate) struct User {
    /// `FSUID_…` (legacy auth, `currentOpenUserId`).
    pub(crate) open_user_id: String,
    /// The plain CRM employee id (`"1000"`), used by the new-style `x-fs-userid` header.
    pub(crate) employee_id: String,
    pub(crate) account: String,
    pub(crate) name: String,
    pub(crate) mobile: String,
    pub(crate) email: String,
    pub(crate) gender: &'static str,
    pub(crate) position: String,
    pub(crate) main_department: i64,
    pub(crate) employee_number: String,
    pub(crate) is_stop: bool,
    pub(crate) leader: Option<String>,
    pub(crate) create_ms: i64,
    pub(crate) update_ms: i64,
}

/// One department.
#[derive(Clone, Debug)]
pub(crate) struct Department {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) parent: i64,
    pub(crate) order: i64,
}

/// The whole company's department id (docs and the .NET test; another doc says 0).
pub(crate) const ROOT: i64 = 999_999;

pub(crate) const ADMIN_OPEN_USER_ID: &str = "FSUID_0123456789ABCDEF0123456789ABCDEF";
pub(crate) const ADMIN_MOBILE: &str = "13800000000";

// (employee id, openUserId, account, name, mobile, position, department, stopped)
type Person = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    i64,
    bool,
);

/// The demo enterprise: 5 departments, 8 employees. The first two are the fixtures' users
/// (张三 is the CRM administrator, employee 1000).
#[derive(Clone, Debug)]
pub(crate) struct Org {
    pub(crate) users: Vec<User>,
    pub(crate) departments: Vec<Department>,
}

impl Org {
    pub(crate) fn demo() -> Self {
        let departments = [
            (ROOT, "示例科技有限公司", 0),
            (1001, "销售部", ROOT),
            (1002, "华东销售组", 1001),
            (1003, "华南销售组", 1001),
            (1004, "财务部", ROOT),
        ]
        .iter()
        .enumerate()
        .map(|(i, (id, name, parent))| Department {
            id: *id,
            name: (*name).to_string(),
            parent: *parent,
            order: i64::try_from(i).unwrap_or(0) + 1,
        })
        .collect();
        let people: [Person; 8] = [
            (
                "1000",
                ADMIN_OPEN_USER_ID,
                "zhangsan",
                "张三",
                ADMIN_MOBILE,
                "销售经理",
                1001,
                false,
            ),
            (
                "1001",
                "FSUID_FEDCBA9876543210FEDCBA9876543210",
                "lisi",
                "李四",
                "13900000000",
                "销售代表",
                1002,
                false,
            ),
            (
                "1002",
                "FSUID_5A1E5000000000000000000000001002",
                "wangwu",
                "王五",
                "13900000001",
                "销售代表",
                1002,
                false,
            ),
            (
                "1003",
                "FSUID_5A1E5000000000000000000000001003",
                "zhaoliu",
                "赵六",
                "13900000002",
                "销售代表",
                1003,
                false,
            ),
            (
                "1004",
                "FSUID_5A1E5000000000000000000000001004",
                "sunqi",
                "孙七",
                "13900000003",
                "销售代表",
                1003,
                false,
            ),
            (
                "1005",
                "FSUID_5A1E5000000000000000000000001005",
                "zhouba",
                "周八",
                "13900000004",
                "销售代表",
                1002,
                false,
            ),
            (
                "1006",
                "FSUID_5A1E5000000000000000000000001006",
                "wujiu",
                "吴九",
                "13900000005",
                "会计",
                1004,
                false,
            ),
            (
                "1007",
                "FSUID_5A1E5000000000000000000000001007",
                "zhengshi",
                "郑十",
                "13900000006",
                "销售代表",
                1001,
                true,
            ),
        ];
        let users = people
            .iter()
            .enumerate()
            .map(
                |(i, (emp, fsuid, account, name, mobile, position, dept, stop))| {
                    let i = i64::try_from(i).unwrap_or(0);
                    User {
                        open_user_id: (*fsuid).to_string(),
                        employee_id: (*emp).to_string(),
                        account: (*account).to_string(),
                        name: (*name).to_string(),
                        mobile: (*mobile).to_string(),
                        email: format!("{account}@example.com"),
                        gender: if i % 3 == 1 { "F" } else { "M" },
                        position: (*position).to_string(),
                        main_department: *dept,
                        employee_number: format!("E{:03}", i + 1),
                        is_stop: *stop,
                        leader: (i > 0).then(|| ADMIN_OPEN_USER_ID.to_string()),
                        // Fixed instants inside the reference's batchByUpdTime window.
                        create_ms: 1_584_316_800_000 + i * 86_400_000,
                        update_ms: 1_710_000_000_000 + i * 3_600_000,
                    }
                },
            )
            .collect();
        Self { users, departments }
    }

    /// An employee by `FSUID_…` or by plain employee id.
    pub(crate) fn user(&self, id: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.open_user_id == id || u.employee_id == id)
    }

    pub(crate) fn department(&self, id: i64) -> Option<&Department> {
        self.departments.iter().find(|d| d.id == id)
    }

    /// `id` and every department below it.
    fn subtree(&self, id: i64) -> Vec<i64> {
        let mut out = vec![id];
        let mut i = 0;
        while i < out.len() {
            let parent = out[i];
            out.extend(
                self.departments
                    .iter()
                    .filter(|d| d.parent == parent && d.id != parent)
                    .map(|d| d.id),
            );
            i += 1;
        }
        out
    }

    fn user_departments(u: &User) -> Vec<i64> {
        let mut ids = vec![u.main_department];
        if u.main_department != ROOT {
            ids.push(ROOT);
        }
        ids
    }

    /// The full employee record of `user/get` and `user/list`.
    pub(crate) fn user_json(u: &User) -> Map<String, Value> {
        let v = json!({
            "openUserId": u.open_user_id,
            "account": u.account,
            "name": u.name,
            "nickName": u.name,
            "isStop": u.is_stop,
            "email": u.email,
            "mobile": u.mobile,
            "gender": u.gender,
            "position": u.position,
            "profileImageUrl": "",
            "departmentIds": Self::user_departments(u),
            "mainDepartmentId": u.main_department,
            "attachingDepartmentIds": [],
            "employeeNumber": u.employee_number,
            "hireDate": "2020-03-16",
            "birthDate": "",
            "startWorkDate": "",
            "createTime": u.create_ms,
            "leaderId": u.leader,
        });
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn users_in(&self, body: &Map<String, Value>) -> Result<Vec<&User>, FxError> {
        let dept = int(body, "departmentId").unwrap_or(ROOT);
        if self.department(dept).is_none() {
            return Err(FxError::new(30007, "部门不存在", "部门不存在"));
        }
        let fetch_child = body.get("fetchChild").and_then(Value::as_bool) == Some(true);
        let scope = if fetch_child {
            self.subtree(dept)
        } else {
            vec![dept]
        };
        Ok(self
            .users
            .iter()
            .filter(|u| Self::user_departments(u).iter().any(|d| scope.contains(d)))
            .collect())
    }

    /// The directory endpoints; the payload goes at the top level.
    pub(crate) fn call(
        &self,
        op: &str,
        body: &Map<String, Value>,
    ) -> Result<Map<String, Value>, FxError> {
        let mut out = Map::new();
        match op {
            "getByMobile" => {
                // An unknown mobile is errorCode 0 with an empty list (crm-cli's branch).
                let mobile = str_of(body, "mobile");
                let list: Vec<Value> = self
                    .users
                    .iter()
                    .filter(|u| !mobile.is_empty() && u.mobile == mobile)
                    .map(|u| {
                        json!({
                            "openUserId": u.open_user_id,
                            "name": u.name,
                            "mobile": u.mobile,
                            "email": u.email,
                            "status": if u.is_stop { "STOP" } else { "NORMAL" },
                            "mainDepartmentIds": [u.main_department],
                            "departmentIds": Self::user_departments(u),
                        })
                    })
                    .collect();
                out.insert("empList".into(), Value::Array(list));
            }
            "get" => {
                let id = str_of(body, "openUserId");
                let user = self
                    .user(&id)
                    .ok_or_else(|| FxError::new(30027, "员工不存在", "员工不存在"))?;
                out = Self::user_json(user);
            }
            "list" => {
                let users = self.users_in(body)?;
                let list = users
                    .into_iter()
                    .map(|u| Value::Object(Self::user_json(u)))
                    .collect();
                out.insert("userList".into(), Value::Array(list));
            }
            "simpleList" => {
                let users = self.users_in(body)?;
                let list = users
                    .into_iter()
                    .map(|u| json!({"openUserId": u.open_user_id, "name": u.name, "nickName": u.name}))
                    .collect();
                out.insert("userList".into(), Value::Array(list));
            }
            "batchByUpdTime" => {
                let start = int(body, "startTime").unwrap_or(0);
                let end = int(body, "endTime").unwrap_or(i64::MAX);
                let size = int(body, "pageSize").unwrap_or(20);
                if !(1..=1000).contains(&size) {
                    return Err(FxError::param("pageSize 取值范围为1~1000"));
                }
                let page = int(body, "pageNumber").unwrap_or(1).max(1);
                let mut users: Vec<&User> = self
                    .users
                    .iter()
                    .filter(|u| u.update_ms >= start && u.update_ms <= end)
                    .collect();
                users.sort_by_key(|u| (u.update_ms, u.employee_id.clone()));
                let total = i64::try_from(users.len()).unwrap_or(0);
                let skip = usize::try_from((page - 1) * size).unwrap_or(usize::MAX);
                let take = usize::try_from(size).unwrap_or(0);
                let list: Vec<Value> = users
                    .iter()
                    .skip(skip)
                    .take(take)
                    .map(|u| Value::Object(Self::user_json(u)))
                    .collect();
                out.insert("pageNumber".into(), json!(page));
                out.insert("pageCount".into(), json!((total + size - 1) / size));
                out.insert("totalCount".into(), json!(total));
                out.insert(
                    "lastChangedTime".into(),
                    json!(users.iter().map(|u| u.update_ms).max().unwrap_or(0)),
                );
                out.insert("employees".into(), Value::Array(list));
            }
            "department/list" => {
                let list = self
                    .departments
                    .iter()
                    .map(|d| json!({"id": d.id, "name": d.name, "parentId": d.parent, "isStop": false, "order": d.order}))
                    .collect();
                out.insert("departments".into(), Value::Array(list));
            }
            "department/detail" => {
                let id = int(body, "departmentId").unwrap_or(-1);
                let d = self
                    .department(id)
                    .ok_or_else(|| FxError::new(30007, "部门不存在", "部门不存在"))?;
                out.insert(
                    "department".into(),
                    json!({"departmentId": d.id, "parentDepartmentId": d.parent, "name": d.name, "isStop": false, "order": d.order}),
                );
            }
            _ => return Err(FxError::unknown_path(op)),
        }
        Ok(out)
    }
}

fn str_of(body: &Map<String, Value>, key: &str) -> String {
    match body.get(key) {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// An integer sent as a number or a numeric string.
pub(crate) fn int(body: &Map<String, Value>, key: &str) -> Option<i64> {
    match body.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: &Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn directory_answers() {
        let org = Org::demo();
        let r = org
            .call("getByMobile", &body(&json!({"mobile": ADMIN_MOBILE})))
            .unwrap();
        assert_eq!(r["empList"][0]["openUserId"], ADMIN_OPEN_USER_ID);
        let r = org
            .call("getByMobile", &body(&json!({"mobile": "1"})))
            .unwrap();
        assert_eq!(r["empList"], json!([]));
        let r = org
            .call(
                "list",
                &body(&json!({"departmentId": 1001, "fetchChild": true})),
            )
            .unwrap();
        assert_eq!(r["userList"].as_array().unwrap().len(), 7);
        let r = org
            .call("list", &body(&json!({"departmentId": 1003})))
            .unwrap();
        assert_eq!(r["userList"].as_array().unwrap().len(), 2);
        assert_eq!(
            org.call("list", &body(&json!({"departmentId": 5})))
                .unwrap_err()
                .code,
            30007
        );
        let r = org
            .call(
                "batchByUpdTime",
                &body(&json!({"pageSize": 3, "pageNumber": 3})),
            )
            .unwrap();
        assert_eq!(
            (r["pageCount"].as_i64(), r["totalCount"].as_i64()),
            (Some(3), Some(8))
        );
        assert_eq!(r["employees"].as_array().unwrap().len(), 2);
    }
}
