//! `sandbox --listen 127.0.0.1:8080`: serves both simulators with the demo data set.

use std::net::SocketAddr;

use sandbox::Sandbox;

const USAGE: &str = "usage: sandbox [--listen ADDR] [--seed N] [--no-demo]\n\
  --listen ADDR   address to serve (default 127.0.0.1:8080; loopback unless you say otherwise)\n\
  --seed N        seed of fault draws and generated ids (default 0)\n\
  --no-demo       start with base data only";

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_target(false).init();
    let mut listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8080));
    let mut seed = 0u64;
    let mut demo = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => match args.next().and_then(|a| a.parse().ok()) {
                Some(addr) => listen = addr,
                None => fail("--listen needs an address such as 127.0.0.1:8080"),
            },
            "--seed" => match args.next().and_then(|a| a.parse().ok()) {
                Some(n) => seed = n,
                None => fail("--seed needs a number"),
            },
            "--no-demo" => demo = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => fail(&format!("unknown argument {other}")),
        }
    }
    let sandbox = match Sandbox::builder()
        .listen(listen)
        .seed(seed)
        .demo_data(demo)
        .start()
        .await
    {
        Ok(s) => s,
        Err(e) => fail(&e.to_string()),
    };
    let k3 = &sandbox.config().k3cloud;
    let fx = &sandbox.config().fxiaoke.apps[0];
    println!("sandbox listening on {}", sandbox.base_url());
    println!();
    println!("K3Cloud  server URL  {}", sandbox.k3cloud_url());
    println!("         acct id     {}", k3.acct_id);
    println!(
        "         user        {} / password {}",
        k3.user_name, k3.password
    );
    println!("         app id      {}", k3.app_id);
    println!("         app secret  {}", k3.app_secret);
    println!("Fxiaoke  base URL    {}", sandbox.fxiaoke_url());
    println!("         appId       {}", fx.app_id);
    println!("         appSecret   {}", fx.app_secret);
    println!("         permanentCode {}", fx.permanent_code);
    println!("         corpId      {}", fx.corp_id);
    println!("Control  {}/__sandbox/", sandbox.base_url());
    println!();
    println!("Demo credentials of a local simulator. Ctrl-C stops it.");
    let _ = tokio::signal::ctrl_c().await;
    sandbox.shutdown().await;
}

fn fail(message: &str) -> ! {
    eprintln!("sandbox: {message}\n{USAGE}");
    std::process::exit(2);
}
