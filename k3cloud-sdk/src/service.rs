//! Service names: the path segment before `.common.kdsvc`.

/// `Kingdee.BOS.WebApi.ServicesStub.DynamicFormService`: forms, queries, metadata.
pub(crate) const DYNAMIC_FORM_SERVICE: &str = "Kingdee.BOS.WebApi.ServicesStub.DynamicFormService";
/// `Kingdee.BOS.WebApi.ServicesStub.AuthService`: session logins.
pub(crate) const AUTH_SERVICE: &str = "Kingdee.BOS.WebApi.ServicesStub.AuthService";
/// The data-centre list lives in another namespace.
pub(crate) const DATA_CENTER_LIST: &str =
    "Kingdee.BOS.ServiceFacade.ServicesStub.Account.AccountService.GetDataCenterList";
/// Every service URL ends with this.
pub(crate) const SUFFIX: &str = ".common.kdsvc";

/// `DynamicFormService.<method>`.
pub(crate) fn dynamic_form(method: &str) -> String {
    format!("{DYNAMIC_FORM_SERVICE}.{method}")
}

/// The method part of a service name (`Save` of `…DynamicFormService.Save`).
pub(crate) fn method_of(service: &str) -> &str {
    service.rsplit('.').next().unwrap_or(service)
}
