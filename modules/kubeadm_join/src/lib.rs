//! kubeadm_join: other control-plane nodes and workers. A node that already joined in
//! the requested role is left alone (`changed: false`); a node that joined in the other
//! role fails with what to do. Otherwise the API endpoint is checked the way kubeadm's
//! token discovery trusts it (pinned CA hash, token signature, verified TLS, /readyz),
//! a JoinConfiguration is rendered for the installed kubeadm (0600) and
//! `kubeadm join --config F` runs. The token and the certificate key are secret params:
//! the runtime masks them in every output, diff and error included.

pub mod discovery;
pub mod https;
pub mod resolve;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use kubeadm_common::config::{self, Document};
use kubeadm_common::node::{
    ADMIN_CONF, APISERVER_MANIFEST, BOOTSTRAP_KUBELET_CONF, CA_CERT, CONTROLLER_MANAGER_MANIFEST,
    CONTROL_PLANE_FILES, ETCD_CA_KEY, ETCD_MANIFEST, KUBELET_CONF, SCHEDULER_MANIFEST,
};
use kubeadm_common::validate::{self, HostPort, Taint};
use kubeadm_common::{output, pki, token, ApiVersion, HostPaths, Kubeadm};
use module_runtime::{Context, Module, ModuleError, Outcome, Result, WriteOptions};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::discovery::{Checked, Discovery};
use crate::resolve::Resolver;

#[derive(Debug)]
pub struct KubeadmJoin;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// `HOST:PORT` of the control plane (the VIP or DNS name).
    pub api_endpoint: String,
    pub token: String,
    pub ca_cert_hashes: Vec<String>,
    #[serde(default)]
    pub control_plane: bool,
    #[serde(default)]
    pub certificate_key: Option<String>,
    #[serde(default)]
    pub advertise_address: Option<String>,
    #[serde(default)]
    pub bind_port: Option<u16>,
    #[serde(default)]
    pub node_name: Option<String>,
    #[serde(default = "default_cri_socket")]
    pub cri_socket: String,
    #[serde(default)]
    pub node_labels: BTreeMap<String, String>,
    /// Unset: kubeadm's default (the control-plane taint on control-plane nodes).
    #[serde(default)]
    pub taints: Option<Vec<Taint>>,
    #[serde(default)]
    pub ignore_preflight_errors: Vec<String>,
    /// How long to wait for the endpoint: the pre-check's retries and kubeadm's
    /// discovery timeout.
    #[serde(default = "default_timeout")]
    pub timeout: String,
    #[serde(default)]
    pub extra_config: Map<String, Value>,
    #[serde(default = "default_kubeadm_path")]
    pub kubeadm_path: String,
    #[serde(default = "default_config_path")]
    pub config_path: PathBuf,
    #[serde(default)]
    pub keep_config: bool,
    #[serde(default)]
    pub reset_on_failure: bool,
    #[serde(default = "default_true")]
    pub precheck: bool,
}

fn default_cri_socket() -> String {
    "unix:///var/run/containerd/containerd.sock".into()
}
fn default_timeout() -> String {
    "5m".into()
}
fn default_kubeadm_path() -> String {
    "kubeadm".into()
}
fn default_config_path() -> PathBuf {
    "/etc/kubernetes/kubeadm-join.yaml".into()
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Role {
    #[serde(rename = "worker")]
    Worker,
    #[serde(rename = "control-plane")]
    ControlPlane,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Worker => "worker",
            Role::ControlPlane => "control-plane",
        }
    }
}

impl Module for KubeadmJoin {
    const NAME: &'static str = "kubeadm_join";
    const SECRETS: &'static [&'static str] = &["token", "certificate_key"];
    type Params = Params;

    fn run(params: Params, ctx: &mut Context) -> Result<Outcome> {
        let paths = HostPaths::default();
        let resolver = Resolver::new(paths.hosts_file.clone(), paths.resolv_conf.clone());
        apply(&params, ctx, &paths, &resolver)
    }
}

/// The params, checked.
#[derive(Debug, Clone)]
pub struct Plan {
    pub role: Role,
    pub endpoint: HostPort,
    pub ca_cert_hashes: Vec<String>,
    pub certificate_key: Option<String>,
    pub advertise_address: Option<IpAddr>,
    pub cri_socket: String,
    pub node_labels: Option<String>,
    pub taints: Option<Value>,
    pub ignore_preflight_errors: Vec<String>,
    pub timeout: u64,
}

/// Checks every param (messages never quote the secret ones).
pub fn plan(params: &Params, ctx: &mut Context) -> Result<Plan> {
    fn p(msg: impl Into<String>) -> ModuleError {
        ModuleError::params(msg)
    }
    validate::config_path("config_path", &params.config_path).map_err(p)?;
    let endpoint = validate::host_port("api_endpoint", &params.api_endpoint, true).map_err(p)?;
    // The runtime masks the values as given; the forms rendered are masked too.
    ctx.add_secret(params.token.trim());
    if let Some(key) = &params.certificate_key {
        ctx.add_secret(&key.trim().to_ascii_lowercase());
    }
    if !token::is_valid_token(params.token.trim()) {
        return Err(p("token: not a bootstrap token: expected [a-z0-9]{6}.[a-z0-9]{16} (as kubeadm token create prints)"));
    }
    if params.ca_cert_hashes.is_empty() {
        return Err(p("ca_cert_hashes: at least one sha256:<64 hex> hash of the cluster CA is required (kubeadm_init returns it; joining without pinning is not supported)"));
    }
    let ca_cert_hashes = params
        .ca_cert_hashes
        .iter()
        .map(|hash| {
            pki::normalize_ca_cert_hash(hash).ok_or_else(|| {
                p(format!(
                    "ca_cert_hashes: {hash:?} is not of the form sha256:<64 hex characters>"
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let role = if params.control_plane {
        Role::ControlPlane
    } else {
        Role::Worker
    };
    let certificate_key = match (role, params.certificate_key.as_deref().map(str::trim)) {
        (Role::ControlPlane, None | Some("")) => {
            return Err(p("certificate_key: required when control_plane is true (kubeadm_init returns it with join_material=control-plane)"))
        }
        (Role::ControlPlane, Some(key)) if !token::is_valid_certificate_key(key) => {
            return Err(p("certificate_key: not a certificate key: expected 64 hex characters (as kubeadm init phase upload-certs --upload-certs prints)"))
        }
        (Role::ControlPlane, Some(key)) => Some(key.to_ascii_lowercase()),
        (Role::Worker, Some(key)) if !key.is_empty() => {
            ctx.warn("certificate_key is only used when control_plane is true; ignored for this worker");
            None
        }
        (Role::Worker, _) => None,
    };
    let advertise_address = params
        .advertise_address
        .as_deref()
        .map(|text| validate::ip_address("advertise_address", text))
        .transpose()
        .map_err(p)?;
    if params.bind_port == Some(0) {
        return Err(p("bind_port: must be a port from 1 to 65535"));
    }
    if role == Role::Worker && (advertise_address.is_some() || params.bind_port.is_some()) {
        ctx.warn("advertise_address and bind_port are those of a control-plane node's API server; ignored for this worker");
    }
    let cri_socket = validate::cri_socket("cri_socket", &params.cri_socket).map_err(p)?;
    if let Some(name) = &params.node_name {
        validate::node_name("node_name", name).map_err(p)?;
    }
    let node_labels = match params.node_labels.is_empty() {
        true => None,
        false => Some(validate::node_labels("node_labels", &params.node_labels).map_err(p)?),
    };
    let taints = params
        .taints
        .as_deref()
        .map(|list| validate::taints("taints", list))
        .transpose()
        .map_err(p)?;
    let ignore_preflight_errors =
        validate::preflight_errors("ignore_preflight_errors", &params.ignore_preflight_errors)
            .map_err(p)?;
    let timeout = token::parse_duration(&params.timeout)
        .filter(|t| *t > 0)
        .ok_or_else(|| {
            p(format!(
                "timeout: {:?} is not a positive duration like 5m, 90s or a number of seconds",
                params.timeout
            ))
        })?;
    Ok(Plan {
        role,
        endpoint,
        ca_cert_hashes,
        certificate_key,
        advertise_address,
        cri_socket,
        node_labels,
        taints,
        ignore_preflight_errors,
        timeout,
    })
}

/// The JoinConfiguration for `api`.
pub fn render(params: &Params, plan: &Plan, api: ApiVersion) -> Result<String> {
    let timeout = token::format_duration(plan.timeout);
    let mut discovery = json!({
        "bootstrapToken": {
            "apiServerEndpoint": plan.endpoint.with_port(6443),
            "token": params.token.trim(),
            "caCertHashes": plan.ca_cert_hashes,
        }
    });
    let registration = config::node_registration(
        &plan.cri_socket,
        params.node_name.as_deref(),
        plan.taints.as_ref(),
        plan.node_labels.as_deref(),
        &plan.ignore_preflight_errors,
    );
    let mut join = json!({"discovery": {}, "nodeRegistration": registration});
    match api {
        ApiVersion::V1beta3 => discovery["timeout"] = json!(timeout),
        ApiVersion::V1beta4 => join["timeouts"] = json!({"discovery": timeout}),
    }
    join["discovery"] = discovery;
    if let (Role::ControlPlane, Some(key)) = (plan.role, &plan.certificate_key) {
        let mut local = Map::new();
        if let Some(address) = plan.advertise_address {
            local.insert("advertiseAddress".into(), json!(address.to_string()));
        }
        local.insert("bindPort".into(), json!(params.bind_port.unwrap_or(6443)));
        join["controlPlane"] = json!({"localAPIEndpoint": local, "certificateKey": key});
    }
    let mut documents = vec![Document::kubeadm(api, config::JOIN_CONFIGURATION, join)];
    config::apply_extra_config(&mut documents, &params.extra_config, api, "extra_config")
        .map_err(ModuleError::params)?;
    Ok(config::render(
        "Rendered by baremetal.k8s.kubeadm_join for one kubeadm join; holds the bootstrap token.",
        &documents,
    ))
}

/// Where this node stands, from the files kubeadm join writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinState {
    Fresh,
    Joined(Role),
    /// Some of join's files without a finished join: an interrupted join or reset.
    Partial(Vec<&'static str>),
}

pub fn join_state(paths: &HostPaths) -> JoinState {
    let control_plane_files: Vec<&str> = paths
        .present(&CONTROL_PLANE_FILES)
        .into_iter()
        .filter(|f| *f != KUBELET_CONF)
        .collect();
    let kubelet = paths.exists(KUBELET_CONF);
    if kubelet && control_plane_files.is_empty() {
        return JoinState::Joined(Role::Worker);
    }
    // Stacked etcd: its manifest is written last, after the member joined.
    let control_plane_complete = [
        ADMIN_CONF,
        APISERVER_MANIFEST,
        CONTROLLER_MANAGER_MANIFEST,
        SCHEDULER_MANIFEST,
    ]
    .iter()
    .all(|f| paths.exists(f))
        && (!paths.exists(ETCD_CA_KEY) || paths.exists(ETCD_MANIFEST));
    if kubelet && control_plane_complete {
        return JoinState::Joined(Role::ControlPlane);
    }
    let mut present = paths.present(&[KUBELET_CONF, BOOTSTRAP_KUBELET_CONF, CA_CERT]);
    present.extend(control_plane_files);
    if present.is_empty() {
        JoinState::Fresh
    } else {
        JoinState::Partial(present)
    }
}

/// The whole module against the files under `paths`, resolving names with `resolver`.
pub fn apply(
    params: &Params,
    ctx: &mut Context,
    paths: &HostPaths,
    resolver: &Resolver,
) -> Result<Outcome> {
    let plan = plan(params, ctx)?;
    let state = join_state(paths);
    // kubeadm names the node after the (lowercased) hostname unless told otherwise.
    let node = params.node_name.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|name| name.trim().to_lowercase())
            .ok()
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "NODE".into())
    });
    match &state {
        JoinState::Joined(role) if *role == plan.role => {
            return Ok(
                Outcome::new(format!("the node already joined as {}", role.name()))
                    .with("joined", json!({"before": true, "after": true}))
                    .with("role", role)
                    .with("api_endpoint", plan.endpoint.with_port(6443)),
            )
        }
        JoinState::Joined(Role::Worker) => {
            return Err(ModuleError::failed(format!(
                "this node already joined as a worker and is now asked to be a control-plane node. kubeadm cannot promote a worker: \
                 drain and delete it (kubectl drain {node} --ignore-daemonsets; kubectl delete node {node}), run `kubeadm reset -f` on it, \
                 then run this task again. Nothing was changed."
            )));
        }
        JoinState::Joined(_) => {
            return Err(ModuleError::failed(format!(
                "this node is a control-plane node and is now asked to be a worker. Remove it from the control plane first: \
                 drain it, run `kubeadm reset -f` on it (removes its etcd member), kubectl delete node {node}, then run this task again. \
                 Nothing was changed."
            )));
        }
        JoinState::Partial(present) if !params.reset_on_failure => {
            return Err(ModuleError::failed(format!(
                "this node holds some of kubeadm join's files without a finished join (present: {}): an interrupted join or reset. \
                 Run `kubeadm reset -f` on it, or set reset_on_failure: true to let this module do so and join again. Nothing was changed.",
                present.join(", ")
            )));
        }
        JoinState::Partial(_) | JoinState::Fresh => {}
    }

    let kubeadm = Kubeadm::detect(&params.kubeadm_path)?;
    let rendered = render(params, &plan, kubeadm.api)?;
    let checked = match params.precheck {
        true => Some(precheck(params, &plan, resolver)?),
        false => None,
    };
    if let JoinState::Partial(present) = &state {
        ctx.record_change(format!(
            "kubeadm reset -f (interrupted join: {} present)",
            present.join(", ")
        ));
        if !ctx.check_mode() {
            reset(&kubeadm, &plan)?;
        }
    }

    let mut options = WriteOptions::mode(0o600);
    if kubeadm.has_config_validate() {
        options = options.validate(&[&kubeadm.path, "config", "validate", "--config", "%s"]);
    }
    ctx.ensure_file(&params.config_path, rendered.as_bytes(), &options)?;
    ctx.record_change(format!("kubeadm join as {}", plan.role.name()));
    if !ctx.check_mode() {
        let config = params.config_path.to_string_lossy().into_owned();
        let out = kubeadm.run(&["join", "--config", &config])?;
        if !out.success() {
            let mut error = output::failure("kubeadm join failed", out);
            let mut note = String::new();
            if params.reset_on_failure {
                note = match reset(&kubeadm, &plan) {
                    Ok(()) => {
                        "; kubeadm reset -f ran (reset_on_failure), so the next run starts clean"
                            .into()
                    }
                    Err(e) => format!("; kubeadm reset -f (reset_on_failure) failed too: {e}"),
                };
            }
            if !params.keep_config {
                ctx.ensure_absent(&params.config_path)?;
            }
            if let ModuleError::Command { msg, .. } = &mut error {
                msg.push_str(&note);
            }
            return Err(error);
        }
        if !params.keep_config {
            ctx.ensure_absent(&params.config_path)?;
        }
    }
    let msg = match ctx.check_mode() {
        true => format!("kubeadm join would run ({})", plan.role.name()),
        false => format!("the node joined as {}", plan.role.name()),
    };
    Ok(Outcome::new(msg)
        .with(
            "joined",
            json!({"before": false, "after": !ctx.check_mode()}),
        )
        .with("role", plan.role)
        .with("api_endpoint", plan.endpoint.with_port(6443))
        .with("kubeadm_version", &kubeadm.version_text)
        .with("api_version", kubeadm.api.group_version())
        .with("changes", ctx.changes())
        .with(
            "precheck",
            checked.map(|c| {
                json!({
                    "ca_cert_hash": c.ca_cert_hash,
                    "server": c.server,
                    "attempts": c.attempts,
                    "readyz_status": c.readyz_status,
                })
            }),
        ))
}

fn precheck(params: &Params, plan: &Plan, resolver: &Resolver) -> Result<Checked> {
    Discovery {
        host: &plan.endpoint.host,
        port: plan.endpoint.port.unwrap_or(6443),
        token: params.token.trim(),
        pins: &plan.ca_cert_hashes,
        timeout: Duration::from_secs(plan.timeout),
        request_timeout: Duration::from_secs(10),
        signature_grace: Duration::from_secs(60),
        resolver,
    }
    .check()
    .map_err(ModuleError::failed)
}

fn reset(kubeadm: &Kubeadm, plan: &Plan) -> Result<()> {
    let out = kubeadm.run(&["reset", "-f", "--cri-socket", &plan.cri_socket])?;
    if out.success() {
        Ok(())
    } else {
        Err(output::failure("kubeadm reset -f failed", out))
    }
}
