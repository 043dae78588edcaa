//! The flows of a configuration: `fxk3::presets` and what each flow's section sets.

use std::sync::Arc;
use std::time::Duration;

use sync_core::fxiaoke::{ObjectSink, ObjectSource, ObjectWriteBack};
use sync_core::k3cloud::{AuditedEdits, Cancellations, FormSink, ShipmentSource};
use sync_core::{DeclarativeMapping, Flow, Mapping};

use super::App;
use crate::config::{
    AuditedOrders, CancelledOrders, FlowConfig, FlowKind, parse_duration, parse_start,
};
use crate::error::{AppError, ConfigError};
use crate::presets;

impl App {
    pub(super) fn build_flow(&self, c: &FlowConfig) -> Result<Flow, AppError> {
        let path = self.config.resolve(&c.mapping);
        let mapping = DeclarativeMapping::from_path(&path).map_err(|e| ConfigError::Mapping {
            flow: c.name.clone(),
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let depends_on = c.depends_on.clone().unwrap_or_else(|| {
            let needs = match c.kind {
                FlowKind::Orders => Some(FlowKind::Customers),
                FlowKind::Deliveries => Some(FlowKind::Orders),
                _ => None,
            };
            self.config
                .flows
                .iter()
                .filter(|f| Some(f.kind) == needs)
                .map(|f| f.name.clone())
                .collect()
        });
        for referenced in mapping.referenced_flows() {
            if !depends_on.contains(&referenced) {
                return Err(ConfigError::Invalid(format!(
                    "flow `{}`: its mapping looks up flow `{referenced}`, which it does not depend on \
                     (add it to depends_on, or name the flow `{referenced}`)",
                    c.name
                ))
                .into());
            }
        }
        let fx = || {
            self.fxiaoke
                .clone()
                .ok_or_else(|| ConfigError::MissingConnection {
                    flow: c.name.clone(),
                    section: "fxiaoke",
                })
        };
        let k3 = || {
            self.k3cloud
                .clone()
                .ok_or_else(|| ConfigError::MissingConnection {
                    flow: c.name.clone(),
                    section: "k3cloud",
                })
        };
        let lifecycle = mapping.sets(presets::CUSTOMER_FORBID_FIELD);
        let cancellations = mapping.sets(presets::ORDER_CANCEL_FIELD);
        let match_lines = mapping.entry_sets(presets::ORDER_ENTRY, presets::ORDER_LINE_KEY_FIELD);
        let mapping: Arc<dyn Mapping> = Arc::new(mapping);
        let mut builder = match c.kind {
            FlowKind::Customers => {
                let object = c.crm_object.clone().unwrap_or_else(|| "AccountObj".into());
                let source =
                    ObjectSource::new(fx()?, presets::customers_source(&object, lifecycle));
                let form = c.erp_form.as_deref().unwrap_or("BD_Customer");
                let mut config = presets::customers_sink(form, c.replace_entries, lifecycle);
                if let Some(org) = &c.use_org {
                    config = config.use_org(org);
                }
                let sink = FormSink::new(k3()?, config);
                let mut b = Flow::builder(&c.name, Arc::new(source), mapping, Arc::new(sink))
                    .actions(c.actions.clone().unwrap_or_default());
                if let Some(field) = &c.write_back_field {
                    b = b.write_back(Arc::new(ObjectWriteBack::new(fx()?, object, field)));
                }
                b
            }
            FlowKind::Orders => {
                let object = c.crm_object.as_deref().unwrap_or("SalesOrderObj");
                let source =
                    ObjectSource::new(fx()?, presets::orders_source(object, cancellations));
                let form = c.erp_form.as_deref().unwrap_or("SAL_SaleOrder");
                let outbound = self
                    .config
                    .flows
                    .iter()
                    .find(|f| f.kind == FlowKind::Deliveries)
                    .and_then(|f| f.erp_form.as_deref())
                    .unwrap_or("SAL_OUTSTOCK");
                let audited = match c.audited_orders.unwrap_or_default() {
                    AuditedOrders::Refuse => AuditedEdits::Refuse,
                    AuditedOrders::Reaudit => AuditedEdits::Reaudit,
                };
                let cancelled = match c.cancelled_orders.unwrap_or_default() {
                    CancelledOrders::CloseOrDelete => Cancellations::CloseOrDelete,
                    CancelledOrders::Report => Cancellations::Report,
                };
                let sink = FormSink::new(
                    k3()?,
                    presets::orders_sink(form, outbound, audited, cancelled, match_lines),
                );
                let actions = c
                    .actions
                    .clone()
                    .unwrap_or_else(|| presets::ORDER_ACTIONS.map(String::from).to_vec());
                Flow::builder(&c.name, Arc::new(source), mapping, Arc::new(sink)).actions(actions)
            }
            FlowKind::Deliveries => {
                let form = c.erp_form.as_deref().unwrap_or("SAL_OUTSTOCK");
                let orders = self
                    .config
                    .flows
                    .iter()
                    .find(|f| f.kind == FlowKind::Orders)
                    .and_then(|f| f.erp_form.as_deref())
                    .unwrap_or("SAL_SaleOrder");
                let source = ShipmentSource::new(
                    k3()?,
                    presets::deliveries_source(form, orders).utc_offset(self.config.time_zone()?),
                );
                let sink = ObjectSink::new(
                    fx()?,
                    presets::deliveries_sink(
                        c.crm_object.as_deref().unwrap_or("SalesOrderObj"),
                        c.notify_title.as_deref().unwrap_or(presets::DELIVERY_TITLE),
                        c.notify_text.as_deref().unwrap_or(presets::DELIVERY_TEXT),
                    ),
                );
                // Every change of what an order shipped is told, not only the first.
                Flow::builder(&c.name, Arc::new(source), mapping, Arc::new(sink))
                    .actions(presets::DELIVERY_ACTIONS)
                    .actions_on_update(true)
            }
        };
        for dep in depends_on {
            builder = builder.depends_on(dep);
        }
        if let Some(n) = c.batch_size {
            builder = builder.batch_size(n);
        }
        if let Some(n) = c.concurrency {
            builder = builder.concurrency(n);
        }
        if let Some(n) = c.follow_up_concurrency {
            builder = builder.follow_up_concurrency(n);
        }
        if let Some(v) = &c.lookback {
            builder = builder.lookback_ms(millis(parse_duration(v).map_err(ConfigError::Invalid)?));
        }
        if let Some(v) = &c.settle {
            builder = builder.settle_ms(millis(parse_duration(v).map_err(ConfigError::Invalid)?));
        }
        if let Some(v) = &c.retry_after {
            builder = builder
                .dead_letter_retry_ms(millis(parse_duration(v).map_err(ConfigError::Invalid)?));
        }
        if let Some(v) = &c.quiet_period {
            builder =
                builder.quiet_period_ms(millis(parse_duration(v).map_err(ConfigError::Invalid)?));
        }
        if let Some(v) = &c.start_from {
            builder = builder.start_from_ms(
                parse_start(v, self.config.time_zone()?).map_err(ConfigError::Invalid)?,
            );
        }
        if let Some(n) = c.max_defer_attempts {
            builder = builder.max_defer_attempts(n);
        }
        Ok(builder.build()?)
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
