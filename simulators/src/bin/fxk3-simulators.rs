//! `fxk3-simulators --listen 127.0.0.1:8080`: serves both simulators with the demo data set.

use std::net::SocketAddr;
use std::time::Duration;

use fxk3_simulators::{FxiaokeConfig, GenerateSpec, K3CloudConfig, Sandbox};

// A plain multi-line literal: a `\` line continuation would strip the option indentation.
const USAGE: &str =
    "usage: fxk3-simulators [--listen ADDR] [--seed N] [--no-demo] [--generate N] [--no-rate-limit]
               [--session-ttl SECS] [--max-query-rows N] [--k3cloud-release R]
  --listen ADDR         address to serve (default 127.0.0.1:8080; loopback unless you say
                        otherwise; port 0 picks a free port, printed on the first line)
  --seed N              seed of the demo data, generated ids and fault draws (default 0)
  --no-demo             start with base data only (organisations, currencies, the CRM directory)
  --generate N          add N more CRM customers and N orders (for benchmarks)
  --no-rate-limit       switch off Fxiaoke's 100 calls / 20 s per path
  --session-ttl SECS    K3Cloud session idle expiry (default 1200)
  --max-query-rows N    K3Cloud ExecuteBillQuery/BillQuery rows per call at most (default 10000)
  --k3cloud-release R   current (default) or legacy: answers that differ by server release
                        (View success: a full ResponseStatus, or null as older servers;
                        login: the session id in the body, or only in the cookie)";

struct Args {
    listen: SocketAddr,
    seed: u64,
    demo: bool,
    generate: usize,
    rate_limit: bool,
    k3cloud: K3CloudConfig,
}

fn parse_args() -> Args {
    let mut out = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        seed: 0,
        demo: true,
        generate: 0,
        rate_limit: true,
        k3cloud: K3CloudConfig::default(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => match args.next().and_then(|a| a.parse().ok()) {
                Some(addr) => out.listen = addr,
                None => fail("--listen needs an address such as 127.0.0.1:8080"),
            },
            "--seed" => match args.next().and_then(|a| a.parse().ok()) {
                Some(n) => out.seed = n,
                None => fail("--seed needs a number"),
            },
            "--generate" => match args.next().and_then(|a| a.parse().ok()) {
                Some(n) => out.generate = n,
                None => fail("--generate needs a number"),
            },
            "--session-ttl" => match args.next().and_then(|a| a.parse().ok()) {
                Some(secs) => out.k3cloud.session_ttl = Duration::from_secs(secs),
                None => fail("--session-ttl needs a number of seconds"),
            },
            "--max-query-rows" => match args.next().and_then(|a| a.parse().ok()) {
                Some(n) if n > 0 => out.k3cloud.max_query_rows = n,
                _ => fail("--max-query-rows needs a number above 0"),
            },
            "--k3cloud-release" => match args.next().map(|a| a.parse()) {
                Some(Ok(release)) => out.k3cloud.release = release,
                Some(Err(e)) => fail(&e),
                None => fail("--k3cloud-release needs legacy or current"),
            },
            "--no-demo" => out.demo = false,
            "--no-rate-limit" => out.rate_limit = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => fail(&format!("unknown argument {other}")),
        }
    }
    out
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_target(false).init();
    let args = parse_args();
    let mut fxiaoke = FxiaokeConfig::default();
    if !args.rate_limit {
        fxiaoke.rate_limit = None;
    }
    let sandbox = match Sandbox::builder()
        .listen(args.listen)
        .seed(args.seed)
        .fxiaoke(fxiaoke)
        .k3cloud(args.k3cloud)
        .demo_data(args.demo)
        .start()
        .await
    {
        Ok(s) => s,
        Err(e) => fail(&e.to_string()),
    };
    if args.generate > 0 {
        sandbox.generate(&GenerateSpec::crm(args.generate));
    }
    let k3 = &sandbox.config().k3cloud;
    let objects = sandbox.fxiaoke_objects();
    let count = |api: &str| objects.get(api).copied().unwrap_or(0);
    println!(
        "sandbox listening on {} (seed {})",
        sandbox.base_url(),
        args.seed
    );
    println!(
        "  CRM: {} customers, {} contacts, {} products, {} orders; ERP: {} materials, {} salesmen",
        count("AccountObj"),
        count("ContactObj"),
        count("ProductObj"),
        count("SalesOrderObj"),
        sandbox.k3cloud_records("BD_MATERIAL").len(),
        sandbox.k3cloud_records("BD_Empinfo").len(),
    );
    println!();
    println!("K3Cloud  server URL     {}", sandbox.k3cloud_url());
    println!("         acct id        {}", k3.acct_id);
    println!("         user/password  {} / {}", k3.user_name, k3.password);
    println!("         app id         {}", k3.app_id);
    println!("         app secret     {}", k3.app_secret);
    println!("         lcid           2052");
    println!("Fxiaoke  base URL       {}", sandbox.fxiaoke_url());
    if let Some(fx) = sandbox.config().fxiaoke.apps.first() {
        println!("         appId          {}", fx.app_id);
        println!("         appSecret      {}", fx.app_secret);
        println!("         permanentCode  {}", fx.permanent_code);
        println!("         corpId         {}", fx.corp_id);
        println!("         ea (x-fs-ea)   {}", fx.ea);
    }
    println!(
        "         operator       FSUID_0123456789ABCDEF0123456789ABCDEF (张三, mobile 13800000000, employee 1000)"
    );
    println!("Control  {}/__sandbox/", sandbox.base_url());
    println!();
    println!("Demo credentials of a local simulator, never real ones. Ctrl-C stops it.");
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "warning: serving on {} — anyone who can reach it can change its data",
            args.listen
        );
    }
    let _ = tokio::signal::ctrl_c().await;
    sandbox.shutdown().await;
}

fn fail(message: &str) -> ! {
    eprintln!("fxk3-simulators: {message}\n{USAGE}");
    std::process::exit(2);
}
