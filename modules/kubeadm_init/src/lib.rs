//! kubeadm_init: the first control-plane node. Renders the kubeadm config for the
//! installed kubeadm's API version, runs `kubeadm init --config F --upload-certs` only on
//! a node that was never initialised, and hands out join material only when asked:
//! a bootstrap token (reused while one lasts long enough, else created), the CA hash,
//! and for control-plane joins a certificate key (reused while its upload lasts, else
//! uploaded again). `changed` means kubeadm ran, a token was created or certificates
//! were uploaded — nothing else.
//!
//! Secrets: the token and the certificate key are *returned* (the playbook hands them
//! to kubeadm_join), so they cannot be masked like secret params. ansible-core strips
//! an `_ansible_no_log` key from a module's result (with a warning) and censors a
//! result only for a task marked `no_log: true`; so join material is refused unless
//! the task is `no_log` (the runtime's `_ansible_no_log` setting). On failure, every
//! token- or key-shaped word of the error is masked.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use kubeadm_common::config::{self, Document};
use kubeadm_common::node::{
    ADMIN_CONF, APISERVER_MANIFEST, BOOTSTRAP_KUBELET_CONF, CONTROL_PLANE_FILES, KUBELET_CONF,
};
use kubeadm_common::token::{self, ListedToken};
use kubeadm_common::validate::{self, HostPort, SubnetKind, Taint};
use kubeadm_common::{output, pki, ApiVersion, HostPaths, Kubeadm, Version};
use module_runtime::files::{self, Attributes};
use module_runtime::{Context, Module, ModuleError, Outcome, Result, WriteOptions};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

#[derive(Debug)]
pub struct KubeadmInit;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default = "default_kubeadm_path")]
    pub kubeadm_path: String,
    #[serde(default = "default_config_path")]
    pub config_path: PathBuf,
    /// VIP or DNS name, with an optional port (kubeadm then uses bind_port).
    #[serde(default)]
    pub control_plane_endpoint: Option<String>,
    /// Defaults to the installed kubeadm's own version (no lookup on the internet).
    #[serde(default)]
    pub kubernetes_version: Option<String>,
    #[serde(default)]
    pub pod_subnet: Vec<String>,
    #[serde(default)]
    pub service_subnet: Vec<String>,
    #[serde(default)]
    pub advertise_address: Option<String>,
    #[serde(default = "default_bind_port")]
    pub bind_port: u16,
    #[serde(default = "default_cri_socket")]
    pub cri_socket: String,
    #[serde(default)]
    pub cgroup_driver: CgroupDriver,
    #[serde(default)]
    pub kube_proxy_mode: KubeProxyMode,
    #[serde(default)]
    pub cert_sans: Vec<String>,
    #[serde(default)]
    pub image_repository: Option<String>,
    #[serde(default)]
    pub node_name: Option<String>,
    #[serde(default)]
    pub node_labels: BTreeMap<String, String>,
    /// Unset: kubeadm's control-plane taint; `[]`: no taint at all.
    #[serde(default)]
    pub taints: Option<Vec<Taint>>,
    #[serde(default)]
    pub ignore_preflight_errors: Vec<String>,
    /// `{Kind: {fields}}` deep-merged into that document (the user's value wins).
    #[serde(default)]
    pub extra_config: Map<String, Value>,
    #[serde(default)]
    pub join_material: JoinMaterial,
    /// TTL of a token this module creates (and of init's own token).
    #[serde(default = "default_token_ttl")]
    pub token_ttl: String,
    /// A token or an uploaded certificate key is reused while at least this is left.
    #[serde(default = "default_reuse_min_ttl")]
    pub reuse_min_ttl: String,
    #[serde(default)]
    pub reset_on_failure: bool,
}

fn default_kubeadm_path() -> String {
    "kubeadm".into()
}
fn default_config_path() -> PathBuf {
    "/etc/kubernetes/kubeadm-config.yaml".into()
}
fn default_bind_port() -> u16 {
    6443
}
fn default_cri_socket() -> String {
    "unix:///var/run/containerd/containerd.sock".into()
}
fn default_token_ttl() -> String {
    "24h".into()
}
fn default_reuse_min_ttl() -> String {
    "1h".into()
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupDriver {
    #[default]
    Systemd,
    Cgroupfs,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KubeProxyMode {
    #[default]
    Iptables,
    Ipvs,
    Nftables,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum JoinMaterial {
    #[default]
    #[serde(rename = "none")]
    None,
    #[serde(rename = "worker")]
    Worker,
    #[serde(rename = "control-plane")]
    ControlPlane,
}

const HEADER: &str =
    "Rendered by baremetal.k8s.kubeadm_init: the configuration this node was initialised with.\n\
                      Changing it changes nothing in a running cluster.";
const TOKEN_DESCRIPTION: &str = "Created by baremetal.k8s.kubeadm_init for joining nodes.";
/// The file, in the certificates folder, that keeps the certificate key of the last
/// upload (root only, beside the keys it protects; `kubeadm reset` empties that folder).
pub const CERTIFICATE_KEY_FILE: &str = "baremetal-k8s-certificate-key.json";
/// kubeadm's default token TTL: init's own token needs no bootstrapTokens entry then.
const KUBEADM_TOKEN_TTL: u64 = 24 * 3600;

impl Module for KubeadmInit {
    const NAME: &'static str = "kubeadm_init";
    type Params = Params;

    fn run(params: Params, ctx: &mut Context) -> Result<Outcome> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        apply(&params, ctx, &HostPaths::default(), now)
    }
}

/// The params, checked: everything the rendering and the run need.
#[derive(Debug, Clone)]
pub struct Plan {
    pub endpoint: Option<HostPort>,
    pub advertise_address: Option<IpAddr>,
    pub pod_subnet: Option<String>,
    pub service_subnet: Option<String>,
    pub cri_socket: String,
    pub node_labels: Option<String>,
    pub taints: Option<Value>,
    pub ignore_preflight_errors: Vec<String>,
    pub kubernetes_version: Option<Version>,
    pub token_ttl: u64,
    pub reuse_min_ttl: u64,
}

/// Checks every param; nothing on the host has been looked at yet.
pub fn plan(params: &Params, no_log: bool) -> Result<Plan> {
    fn p(msg: impl Into<String>) -> ModuleError {
        ModuleError::params(msg)
    }
    if params.join_material != JoinMaterial::None && !no_log {
        return Err(p(
            "join_material returns the bootstrap token and the certificate key: set `no_log: true` on this task \
             (ansible-core hides a module's result only for a no_log task; a module cannot mark its own result). \
             Nothing was changed.",
        ));
    }
    validate::config_path("config_path", &params.config_path).map_err(p)?;
    let endpoint = params
        .control_plane_endpoint
        .as_deref()
        .map(|text| validate::host_port("control_plane_endpoint", text, false))
        .transpose()
        .map_err(p)?;
    if params.join_material == JoinMaterial::ControlPlane && endpoint.is_none() {
        return Err(p("join_material=control-plane needs control_plane_endpoint: kubeadm adds control-plane nodes only to a cluster with a stable endpoint (the VIP or DNS name)"));
    }
    let advertise_address = params
        .advertise_address
        .as_deref()
        .map(|text| validate::ip_address("advertise_address", text))
        .transpose()
        .map_err(p)?;
    if params.bind_port == 0 {
        return Err(p("bind_port: must be a port from 1 to 65535"));
    }
    let subnet = |param: &str, list: &[String], kind| {
        if list.is_empty() {
            Ok(None)
        } else {
            validate::subnets(param, list, kind).map(Some)
        }
    };
    let pod_subnet = subnet("pod_subnet", &params.pod_subnet, SubnetKind::Pod).map_err(p)?;
    let service_subnet = subnet(
        "service_subnet",
        &params.service_subnet,
        SubnetKind::Service,
    )
    .map_err(p)?;
    let cri_socket = validate::cri_socket("cri_socket", &params.cri_socket).map_err(p)?;
    for san in &params.cert_sans {
        let name = san.strip_prefix("*.").unwrap_or(san);
        if san.parse::<IpAddr>().is_err() && !validate::is_dns_subdomain(name) {
            return Err(p(format!(
                "cert_sans: {san:?} is neither an IP address nor a DNS name (lowercase RFC 1123, optionally *.DOMAIN)"
            )));
        }
    }
    if let Some(repository) = &params.image_repository {
        if repository.is_empty() || repository.contains(char::is_whitespace) {
            return Err(p(format!(
                "image_repository: {repository:?} is not a registry path like registry.example.com/k8s"
            )));
        }
    }
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
    let kubernetes_version = params
        .kubernetes_version
        .as_deref()
        .map(|text| {
            Version::parse(text).ok_or_else(|| {
                p(format!(
                    "kubernetes_version: {text:?} is not a release like v1.31.4 (labels such as stable need the internet and are not accepted)"
                ))
            })
        })
        .transpose()?;
    let duration = |param: &str, text: &str| {
        token::parse_duration(text).ok_or_else(|| {
            p(format!(
                "{param}: {text:?} is not a duration like 24h, 1h30m, 90s or a number of seconds"
            ))
        })
    };
    let token_ttl = duration("token_ttl", &params.token_ttl)?;
    let reuse_min_ttl = duration("reuse_min_ttl", &params.reuse_min_ttl)?;
    if token_ttl != 0 && token_ttl <= reuse_min_ttl {
        return Err(p(format!(
            "token_ttl ({}) must be longer than reuse_min_ttl ({}), or a new token would never be reused",
            params.token_ttl, params.reuse_min_ttl
        )));
    }
    Ok(Plan {
        endpoint,
        advertise_address,
        pod_subnet,
        service_subnet,
        cri_socket,
        node_labels,
        taints,
        ignore_preflight_errors,
        kubernetes_version,
        token_ttl,
        reuse_min_ttl,
    })
}

/// Checks what depends on the installed kubeadm.
fn check_against_kubeadm(params: &Params, plan: &Plan, kubeadm: &Kubeadm) -> Result<Version> {
    let version = plan.kubernetes_version.unwrap_or(kubeadm.version);
    // kubeadm deploys its own minor and the one before (NormalizeKubernetesVersion).
    if version.major != kubeadm.version.major || version.minor + 1 < kubeadm.version.minor {
        return Err(ModuleError::params(format!(
            "kubernetes_version: kubeadm {} deploys control planes of v{}.{} or v{}.{}, not {version}",
            kubeadm.version_text,
            kubeadm.version.major,
            kubeadm.version.minor.saturating_sub(1),
            kubeadm.version.major,
            kubeadm.version.minor
        )));
    }
    if params.kube_proxy_mode == KubeProxyMode::Nftables && version.minor < 31 {
        return Err(ModuleError::params(format!(
            "kube_proxy_mode: nftables needs Kubernetes v1.31 or later (beta there), not {version}"
        )));
    }
    Ok(version)
}

/// The config file kubeadm init reads, for the API version `kubeadm` expects.
pub fn render(params: &Params, plan: &Plan, api: ApiVersion, version: Version) -> Result<String> {
    let registration = config::node_registration(
        &plan.cri_socket,
        params.node_name.as_deref(),
        plan.taints.as_ref(),
        plan.node_labels.as_deref(),
        &plan.ignore_preflight_errors,
    );
    let mut local_endpoint = Map::new();
    if let Some(address) = plan.advertise_address {
        local_endpoint.insert("advertiseAddress".into(), json!(address.to_string()));
    }
    local_endpoint.insert("bindPort".into(), json!(params.bind_port));
    let mut init = json!({
        "nodeRegistration": registration,
        "localAPIEndpoint": local_endpoint,
    });
    if plan.token_ttl != KUBEADM_TOKEN_TTL {
        init["bootstrapTokens"] = json!([{"ttl": token::format_duration(plan.token_ttl)}]);
    }

    let mut cluster = Map::new();
    cluster.insert("kubernetesVersion".into(), json!(version.to_string()));
    if let Some(endpoint) = &params.control_plane_endpoint {
        cluster.insert("controlPlaneEndpoint".into(), json!(endpoint.trim()));
    }
    let mut networking = Map::new();
    if let Some(subnet) = &plan.pod_subnet {
        networking.insert("podSubnet".into(), json!(subnet));
    }
    if let Some(subnet) = &plan.service_subnet {
        networking.insert("serviceSubnet".into(), json!(subnet));
    }
    if !networking.is_empty() {
        cluster.insert("networking".into(), Value::Object(networking));
    }
    if !params.cert_sans.is_empty() {
        cluster.insert("apiServer".into(), json!({"certSANs": params.cert_sans}));
    }
    if let Some(repository) = &params.image_repository {
        cluster.insert("imageRepository".into(), json!(repository));
    }

    let cgroup_driver = match params.cgroup_driver {
        CgroupDriver::Systemd => "systemd",
        CgroupDriver::Cgroupfs => "cgroupfs",
    };
    let proxy_mode = match params.kube_proxy_mode {
        KubeProxyMode::Iptables => "iptables",
        KubeProxyMode::Ipvs => "ipvs",
        KubeProxyMode::Nftables => "nftables",
    };
    let mut documents = vec![
        Document::kubeadm(api, config::INIT_CONFIGURATION, init),
        Document::kubeadm(api, config::CLUSTER_CONFIGURATION, Value::Object(cluster)),
        Document::new(
            "kubelet.config.k8s.io/v1beta1",
            config::KUBELET_CONFIGURATION,
            json!({"cgroupDriver": cgroup_driver}),
        ),
        Document::new(
            "kubeproxy.config.k8s.io/v1alpha1",
            config::KUBE_PROXY_CONFIGURATION,
            json!({"mode": proxy_mode}),
        ),
    ];
    config::apply_extra_config(&mut documents, &params.extra_config, api, "extra_config")
        .map_err(ModuleError::params)?;
    Ok(config::render(HEADER, &documents))
}

/// Where this node stands, from the files kubeadm init writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitState {
    Fresh,
    Initialized,
    /// Joined the cluster as a worker: not a node to initialise.
    Worker,
    /// Some of init's files, not all: an interrupted init or reset.
    Inconsistent {
        present: Vec<&'static str>,
        missing: Vec<&'static str>,
    },
}

pub fn init_state(paths: &HostPaths) -> InitState {
    let mut candidates = CONTROL_PLANE_FILES.to_vec();
    candidates.push(BOOTSTRAP_KUBELET_CONF);
    let present = paths.present(&candidates);
    let required = [ADMIN_CONF, KUBELET_CONF, APISERVER_MANIFEST];
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|f| !present.contains(f))
        .collect();
    if present.is_empty() {
        InitState::Fresh
    } else if missing.is_empty() {
        InitState::Initialized
    } else if present == [KUBELET_CONF] {
        InitState::Worker
    } else {
        InitState::Inconsistent { present, missing }
    }
}

#[derive(Debug, Default, Serialize)]
struct JoinInfo {
    role: JoinMaterial,
    api_endpoint: Option<String>,
    token: Option<String>,
    token_expires: Option<String>,
    ca_cert_hashes: Vec<String>,
    certificate_key: Option<String>,
    certificate_key_expires: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredCertificateKey {
    certificate_key: String,
    /// The kubeadm-certs proxy token created by the same upload: while it is the newest
    /// one, the Secret still holds certificates encrypted with this key.
    proxy_token_id: String,
}

/// The whole module against the files under `paths`, at Unix time `now`.
pub fn apply(params: &Params, ctx: &mut Context, paths: &HostPaths, now: i64) -> Result<Outcome> {
    let result = run_steps(params, ctx, paths, now);
    if let Err(error) = &result {
        // A failed run returns no join material: nothing secret-shaped may show.
        for secret in output::secrets_in_error(error) {
            ctx.add_secret(&secret);
        }
    }
    result
}

/// Pod and service networks that share addresses: kubeadm does not check, and the
/// cluster then routes some pod addresses as services.
fn subnet_overlap(plan: &Plan) -> Option<String> {
    let pods = plan.pod_subnet.as_deref()?;
    let services = plan
        .service_subnet
        .as_deref()
        .unwrap_or(validate::KUBEADM_DEFAULT_SERVICE_SUBNET);
    let (pod, service) = validate::overlapping_subnets(pods, services)?;
    Some(format!(
        "pod_subnet and service_subnet overlap: {pod} and {service}{} share addresses; give networks apart from each other",
        if plan.service_subnet.is_none() { " (kubeadm's default service_subnet)" } else { "" }
    ))
}

fn run_steps(params: &Params, ctx: &mut Context, paths: &HostPaths, now: i64) -> Result<Outcome> {
    let plan = plan(params, ctx.settings.no_log)?;
    let kubeadm = Kubeadm::detect(&params.kubeadm_path)?;
    let state = init_state(paths);
    // Overlapping networks are refused for a cluster about to be created; one that already
    // runs with them cannot change them, so there it is a warning.
    if let Some(overlap) = subnet_overlap(&plan) {
        match state {
            InitState::Initialized => ctx.warn(format!(
                "{overlap} (this cluster runs with them; kubeadm cannot change its networks)"
            )),
            _ => {
                return Err(ModuleError::params(format!(
                    "{overlap}. Nothing was changed."
                )))
            }
        }
    }
    // The version limits matter only to an init that will run: an initialised node
    // whose kubeadm was upgraded since is fine.
    let version = match state {
        InitState::Initialized => plan.kubernetes_version.unwrap_or(kubeadm.version),
        _ => check_against_kubeadm(params, &plan, &kubeadm)?,
    };
    let rendered = render(params, &plan, kubeadm.api, version)?;

    let initialized_before = state == InitState::Initialized;
    let mut init_stdout = None;
    match &state {
        InitState::Worker => {
            return Err(ModuleError::failed(format!(
                "this node already joined a cluster as a worker ({} present, no control plane): run kubeadm_init on the first control-plane node",
                paths.kubernetes(KUBELET_CONF).display()
            )));
        }
        InitState::Inconsistent { present, missing } if !params.reset_on_failure => {
            return Err(ModuleError::failed(format!(
                "this node holds some of kubeadm init's files but not all (present: {}; missing: {}): an interrupted init or reset. \
                 Run `kubeadm reset -f` on it, or set reset_on_failure: true to let this module do so and initialise again. Nothing was changed.",
                present.join(", "),
                missing.join(", ")
            )));
        }
        InitState::Initialized => warn_if_config_differs(ctx, &params.config_path, &rendered),
        InitState::Inconsistent { present, .. } => {
            ctx.record_change(format!(
                "kubeadm reset -f (inconsistent node: {} present)",
                present.join(", ")
            ));
            if !ctx.check_mode() {
                reset(&kubeadm, &plan)?;
            }
            init_stdout = initialise(params, &plan, &kubeadm, &rendered, ctx)?;
        }
        InitState::Fresh => {
            init_stdout = initialise(params, &plan, &kubeadm, &rendered, ctx)?;
        }
    }
    let initialized_after = initialized_before || !ctx.check_mode();

    let certificates = certificates_dir(params, paths);
    // init --upload-certs printed the certificate key: keep it (root-only) whether or not
    // join material is asked now, so a later request reuses that upload.
    if let Some((_, Some(key))) = init_stdout.as_deref().map(init_printed_secrets) {
        let tokens = list_tokens(&kubeadm)?;
        store_certificate_key(
            &certificates.dir.join(CERTIFICATE_KEY_FILE),
            &key,
            &tokens,
            now,
        )?;
    }
    let ca_path = certificates.dir.join("ca.crt");
    let ca_cert_hash = match ca_path.exists() || initialized_after {
        true => Some(ca_cert_hash(&ca_path)?),
        false => None,
    };
    let mut outcome = Outcome::new(if initialized_before {
        "the node was already initialised".to_string()
    } else if ctx.check_mode() {
        "kubeadm init would run".to_string()
    } else {
        "kubeadm init ran".to_string()
    });

    let join = match params.join_material {
        JoinMaterial::None => None,
        _ if !initialized_after => None,
        role => Some(join_material(
            &plan,
            &kubeadm,
            ctx,
            &certificates,
            &params.config_path,
            now,
            role,
            init_stdout.as_deref(),
            ca_cert_hash.clone(),
        )?),
    };
    // What the cluster really uses (admin.conf), else what the params say.
    let endpoint = read_server(&paths.kubernetes(ADMIN_CONF))
        .or_else(|| {
            plan.endpoint
                .as_ref()
                .map(|e| e.with_port(params.bind_port))
        })
        .or_else(|| {
            plan.advertise_address.map(|address| {
                HostPort {
                    host: address.to_string(),
                    port: None,
                }
                .with_port(params.bind_port)
            })
        });
    outcome = outcome
        .with(
            "initialized",
            json!({"before": initialized_before, "after": initialized_after}),
        )
        .with("kubeadm_version", &kubeadm.version_text)
        .with("api_version", kubeadm.api.group_version())
        .with("kubernetes_version", version.to_string())
        .with("config_path", &params.config_path)
        .with("api_endpoint", endpoint.clone())
        .with("ca_cert_hash", &ca_cert_hash)
        .with("changes", ctx.changes())
        .with(
            "join",
            join.map(|mut j| {
                j.api_endpoint = endpoint;
                j
            }),
        );
    Ok(outcome)
}

/// On an initialised node the file is the record of what init used: it is never
/// rewritten, but a difference is worth a warning.
fn warn_if_config_differs(ctx: &mut Context, path: &Path, rendered: &str) {
    if let Ok(Some(current)) = files::read_text_optional(path) {
        if current != rendered {
            ctx.warn(format!(
                "{} differs from what these parameters render; the node is already initialised and kubeadm_init \
                 does not reconfigure a running cluster, so the file was left as it is (use kubeadm upgrade or the \
                 kubeadm-config ConfigMap for changes)",
                path.display()
            ));
        }
    }
}

/// Writes the config (validated by `kubeadm config validate` where kubeadm has it) and
/// runs init; returns init's stdout (None in check mode).
fn initialise(
    params: &Params,
    plan: &Plan,
    kubeadm: &Kubeadm,
    rendered: &str,
    ctx: &mut Context,
) -> Result<Option<String>> {
    let mut options = WriteOptions::mode(0o600);
    if kubeadm.has_config_validate() {
        options = options.validate(&[&kubeadm.path, "config", "validate", "--config", "%s"]);
    }
    ctx.ensure_file(&params.config_path, rendered.as_bytes(), &options)?;
    ctx.record_change("kubeadm init");
    if ctx.check_mode() {
        return Ok(None);
    }
    let config = params.config_path.to_string_lossy();
    let out = kubeadm.run(&["init", "--config", &config, "--upload-certs"])?;
    if out.success() {
        return Ok(Some(out.stdout));
    }
    let mut error = output::failure("kubeadm init failed", out);
    if params.reset_on_failure {
        let note = match reset(kubeadm, plan) {
            Ok(()) => "; kubeadm reset -f ran (reset_on_failure), so the next run starts clean"
                .to_string(),
            Err(e) => format!("; kubeadm reset -f (reset_on_failure) failed too: {e}"),
        };
        if let ModuleError::Command { msg, .. } = &mut error {
            msg.push_str(&note);
        }
    }
    Err(error)
}

fn reset(kubeadm: &Kubeadm, plan: &Plan) -> Result<()> {
    let out = kubeadm.run(&["reset", "-f", "--cri-socket", &plan.cri_socket])?;
    if out.success() {
        Ok(())
    } else {
        Err(output::failure("kubeadm reset -f failed", out))
    }
}

/// The folder of the cluster's certificates: kubeadm's default under /etc/kubernetes,
/// or `certificatesDir` from extra_config.
#[derive(Debug)]
struct CertificatesDir {
    dir: PathBuf,
    custom: bool,
}

fn certificates_dir(params: &Params, paths: &HostPaths) -> CertificatesDir {
    let custom = params
        .extra_config
        .get(config::CLUSTER_CONFIGURATION)
        .and_then(|cluster| cluster.get("certificatesDir"))
        .and_then(Value::as_str)
        .filter(|dir| *dir != "/etc/kubernetes/pki");
    match custom {
        Some(dir) => CertificatesDir {
            dir: dir.into(),
            custom: true,
        },
        None => CertificatesDir {
            dir: paths.kubernetes("pki"),
            custom: false,
        },
    }
}

fn ca_cert_hash(path: &Path) -> Result<String> {
    let pem = files::read_text_optional(path)?.ok_or_else(|| {
        ModuleError::failed(format!(
            "{} is missing: cannot compute the CA cert hash",
            path.display()
        ))
    })?;
    let hashes = pki::ca_cert_hashes_of_pem(&pem)
        .map_err(|e| ModuleError::failed(format!("{}: {e}", path.display())))?;
    Ok(hashes.into_iter().next().unwrap_or_default())
}

/// The `server:` of a kubeconfig, without `https://`.
fn read_server(kubeconfig: &Path) -> Option<String> {
    let text = files::read_text_optional(kubeconfig).ok()??;
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("server:"))
        .map(|value| value.trim().trim_matches('"'))
        .find_map(|url| url.strip_prefix("https://"))
        .map(|hostport| hostport.trim_end_matches('/').to_owned())
}

/// The token and certificate key kubeadm init printed.
pub fn init_printed_secrets(stdout: &str) -> (Option<String>, Option<String>) {
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    let token = lines
        .iter()
        .find_map(|l| l.strip_prefix("[bootstrap-token] Using token:"))
        .map(str::trim)
        .filter(|t| token::is_valid_token(t))
        .map(str::to_owned);
    let key = printed_certificate_key(stdout);
    (token, key)
}

/// The key `init --upload-certs` or `init phase upload-certs --upload-certs` printed on
/// the line after `[upload-certs] Using certificate key:`.
/// (Without that line, as older releases print it, the last line if it is a key.)
pub fn printed_certificate_key(stdout: &str) -> Option<String> {
    let lines: Vec<&str> = stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let candidate = match lines
        .iter()
        .position(|l| l.starts_with("[upload-certs] Using certificate key:"))
    {
        Some(at) => lines.get(at + 1),
        None => lines.last(),
    };
    candidate
        .filter(|k| token::is_valid_certificate_key(k))
        .map(|k| k.to_string())
}

fn list_tokens(kubeadm: &Kubeadm) -> Result<Vec<ListedToken>> {
    let out = kubeadm.run(&["token", "list", "-o", "json"])?;
    if !out.success() {
        return Err(output::failure("kubeadm token list failed", out));
    }
    token::parse_token_list(&out.stdout).map_err(ModuleError::failed)
}

#[allow(clippy::too_many_arguments)]
fn join_material(
    plan: &Plan,
    kubeadm: &Kubeadm,
    ctx: &mut Context,
    certificates: &CertificatesDir,
    config_path: &Path,
    now: i64,
    role: JoinMaterial,
    init_stdout: Option<&str>,
    ca_cert_hash: Option<String>,
) -> Result<JoinInfo> {
    let min_ttl = plan.reuse_min_ttl as i64;
    let (init_token, init_key) = init_stdout.map(init_printed_secrets).unwrap_or_default();
    let mut tokens = list_tokens(kubeadm)?;
    let mut info = JoinInfo {
        role,
        ca_cert_hashes: ca_cert_hash.into_iter().collect(),
        ..Default::default()
    };

    // The token: init's own, else one that lasts long enough, else a new one.
    let chosen = match &init_token {
        Some(t) => tokens.iter().find(|listed| &listed.token == t).cloned(),
        None => token::reusable_join_token(&tokens, now, min_ttl).cloned(),
    };
    match (chosen, init_token) {
        (Some(listed), _) => {
            info.token_expires = listed.expires.map(token::format_rfc3339);
            info.token = Some(listed.token);
        }
        (None, Some(t)) => info.token = Some(t),
        (None, None) => {
            ctx.record_change("created a bootstrap token");
            if !ctx.check_mode() {
                info.token = Some(create_token(kubeadm, plan.token_ttl)?);
                info.token_expires = (plan.token_ttl > 0)
                    .then(|| token::format_rfc3339(now + plan.token_ttl as i64));
            }
        }
    }

    // The certificate key: init's, else the stored one while its upload is the
    // newest and lasts, else a new upload (control-plane joins only).
    let key_path = certificates.dir.join(CERTIFICATE_KEY_FILE);
    if let Some(key) = init_key {
        // Stored right after init (run_steps).
        if role == JoinMaterial::ControlPlane {
            info.certificate_key_expires = proxy_expiry(&tokens, now);
            info.certificate_key = Some(key);
        }
    } else if role == JoinMaterial::ControlPlane {
        let newest = token::newest_certs_proxy(&tokens, now);
        let stored = read_stored_key(&key_path);
        let reusable = match (&stored, newest) {
            (Some(stored), Some(proxy)) => {
                proxy.id() == stored.proxy_token_id
                    && proxy.remaining(now).map_or(true, |left| left >= min_ttl)
            }
            _ => false,
        };
        if let (true, Some(stored)) = (reusable, stored) {
            info.certificate_key_expires = proxy_expiry(&tokens, now);
            info.certificate_key = Some(stored.certificate_key);
        } else {
            ctx.record_change(
                "uploaded the control-plane certificates (kubeadm-certs Secret, 2 h)",
            );
            if !ctx.check_mode() {
                let key = upload_certs(kubeadm, certificates.custom.then_some(config_path))?;
                tokens = list_tokens(kubeadm)?;
                store_certificate_key(&key_path, &key, &tokens, now)?;
                info.certificate_key_expires = proxy_expiry(&tokens, now);
                info.certificate_key = Some(key);
            }
        }
    }
    Ok(info)
}

fn proxy_expiry(tokens: &[ListedToken], now: i64) -> Option<String> {
    token::newest_certs_proxy(tokens, now)
        .and_then(|proxy| proxy.expires)
        .map(token::format_rfc3339)
}

fn create_token(kubeadm: &Kubeadm, ttl: u64) -> Result<String> {
    let ttl = token::format_duration(ttl);
    let out = kubeadm.run(&[
        "token",
        "create",
        "--ttl",
        &ttl,
        "--description",
        TOKEN_DESCRIPTION,
    ])?;
    if !out.success() {
        return Err(output::failure("kubeadm token create failed", out));
    }
    out.stdout
        .lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty())
        .filter(|line| token::is_valid_token(line))
        .map(str::to_owned)
        .ok_or_else(|| {
            ModuleError::failed(
                "kubeadm token create did not print a token of the form [a-z0-9]{6}.[a-z0-9]{16}",
            )
        })
}

/// Without `--config` kubeadm reads the certificates from the default folder and the
/// cluster from admin.conf; the init config is passed only for a custom certificatesDir
/// (it may no longer validate after a kubeadm upgrade).
fn upload_certs(kubeadm: &Kubeadm, config: Option<&Path>) -> Result<String> {
    let config = config.map(|path| path.to_string_lossy().into_owned());
    let mut args = vec!["init", "phase", "upload-certs", "--upload-certs"];
    if let Some(config) = &config {
        args.extend(["--config", config.as_str()]);
    }
    let out = kubeadm.run(&args)?;
    if !out.success() {
        return Err(output::failure(
            "kubeadm init phase upload-certs failed",
            out,
        ));
    }
    printed_certificate_key(&out.stdout).ok_or_else(|| {
        ModuleError::failed("kubeadm init phase upload-certs --upload-certs did not print a certificate key (64 hex characters) after `[upload-certs] Using certificate key:`")
    })
}

fn read_stored_key(path: &Path) -> Option<StoredCertificateKey> {
    let text = files::read_text_optional(path).ok()??;
    let stored: StoredCertificateKey = serde_json::from_str(&text).ok()?;
    token::is_valid_certificate_key(&stored.certificate_key).then_some(stored)
}

/// Keeps the key with the id of the proxy token its upload created (the newest one).
/// Written directly, root only, without a diff: the diff would print the key.
fn store_certificate_key(path: &Path, key: &str, tokens: &[ListedToken], now: i64) -> Result<()> {
    let Some(proxy) = token::newest_certs_proxy(tokens, now) else {
        // kubeadm < 1.15 or a changed description: the key cannot be tied to an upload,
        // so it is not kept (the next control-plane request uploads again).
        let _ = std::fs::remove_file(path);
        return Ok(());
    };
    let stored = StoredCertificateKey {
        certificate_key: key.to_owned(),
        proxy_token_id: proxy.id().to_owned(),
    };
    let text = serde_json::to_string(&stored).unwrap_or_default() + "\n";
    let attributes = Attributes::resolve(&WriteOptions::mode(0o600), None)?;
    files::write_atomic(
        path,
        text.as_bytes(),
        attributes,
        &WriteOptions::mode(0o600),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_keys_and_tokens() {
        let key = "ab".repeat(32);
        let phase = format!("[upload-certs] Storing the certificates in Secret\n[upload-certs] Using certificate key:\n{key}\n");
        assert_eq!(printed_certificate_key(&phase), Some(key.clone()));
        assert_eq!(
            printed_certificate_key(&format!("something\n{key}\n\n")),
            Some(key.clone())
        );
        assert_eq!(
            printed_certificate_key("[upload-certs] Using certificate key:\nnot-a-key\n"),
            None
        );
        assert_eq!(printed_certificate_key(""), None);
        let init = format!("[bootstrap-token] Using token: abcdef.0123456789abcdef\n{phase}");
        assert_eq!(
            init_printed_secrets(&init),
            (Some("abcdef.0123456789abcdef".into()), Some(key))
        );
        assert_eq!(
            init_printed_secrets("[bootstrap-token] Using tokens: [a b]\n"),
            (None, None)
        );
    }
}
