//! The example programs' flows on the simulators, and the mapping files they share with `fxk3`.

use examples::{Systems, flows, warehouse};

#[test]
fn the_example_mappings_are_the_ones_fxk3_init_writes() {
    for (name, text) in fxk3::EXAMPLE_MAPPINGS {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("mappings")
            .join(name);
        let ours = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            ours,
            text,
            "{} differs from fxk3/example/mappings/{name}: keep the two copies the same",
            path.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_three_flows_sync_the_demo_data_and_notify_each_delivery_once() {
    let systems = Systems::simulated().await.unwrap();
    let sandbox = systems.sandbox.as_ref().unwrap();
    let (accounts, orders) = (
        sandbox.fxiaoke_records("AccountObj").len(),
        sandbox.fxiaoke_records("SalesOrderObj").len(),
    );
    let engine = systems.engine();

    let report = engine
        .run(&flows::customers(&systems).unwrap())
        .await
        .unwrap();
    assert_eq!(report.counts.created, u64::try_from(accounts).unwrap());
    assert_eq!(sandbox.k3cloud_records("BD_Customer").len(), accounts);

    let report = engine.run(&flows::orders(&systems).unwrap()).await.unwrap();
    assert_eq!(report.counts.created, u64::try_from(orders).unwrap());
    // Submit and Audit of every order.
    assert_eq!(
        report.counts.actions_done,
        2 * u64::try_from(orders).unwrap()
    );

    let shipped = warehouse::ship(&systems.k3cloud, &warehouse::audited_orders(sandbox, 3))
        .await
        .unwrap();
    assert_eq!(shipped, 3);
    // A run reads up to its start, exclusive (settle 0 on the simulators): an outbound audited
    // in the very millisecond the run starts belongs to the next run.
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    let deliveries = flows::deliveries(&systems).unwrap();
    let report = engine.run(&deliveries).await.unwrap();
    assert_eq!((report.counts.read, report.counts.actions_done), (3, 3));
    let report = engine.run(&deliveries).await.unwrap();
    assert_eq!(
        (report.counts.unchanged, report.counts.actions_done),
        (3, 0)
    );
    assert_eq!(sandbox.fxiaoke_messages().len(), 3);
    let shipped_orders = sandbox
        .fxiaoke_records("SalesOrderObj")
        .into_iter()
        .filter(|o| o["logistics_status"] == "3")
        .count();
    assert_eq!(shipped_orders, 3);
    systems.shutdown().await;
}
