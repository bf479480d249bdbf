"""Field names and types of the configuration documents kubeadm reads.

Taken from the published API references (kubeadm.k8s.io v1beta3 and v1beta4,
kubelet.config.k8s.io/v1beta1, kubeproxy.config.k8s.io/v1alpha1). A struct is a
Struct(go_name, {json_name: type}); a type is a leaf name, ListOf, MapOf or a
Struct. "any" is not checked below that point.
"""


class Struct:
    def __init__(self, go_name, fields):
        self.go_name = go_name
        self.fields = fields


class ListOf:
    def __init__(self, elem, go_type):
        self.elem = elem
        self.go_type = go_type


class MapOf:
    def __init__(self, elem, go_type):
        self.elem = elem
        self.go_type = go_type


S, B, I32, I64, F64, DUR, TIME, ANY = "string", "bool", "int32", "int64", "float64", "duration", "time", "any"
STRINGS = ListOf(S, "[]string")
TYPE_META = {"apiVersion": S, "kind": S}


def _kubeadm(version):
    pkg = version
    v4 = version == "v1beta4"
    arg = Struct("Arg", {"name": S, "value": S})
    args = ListOf(arg, f"[]{pkg}.Arg") if v4 else MapOf(S, "map[string]string")
    env = Struct("EnvVar", {"name": S, "value": S, "valueFrom": ANY})
    volume = Struct("HostPathMount", {"name": S, "hostPath": S, "mountPath": S, "readOnly": B, "pathType": S})
    component = {"extraArgs": args, "extraVolumes": ListOf(volume, f"[]{pkg}.HostPathMount")}
    if v4:
        component["extraEnvs"] = ListOf(env, f"[]{pkg}.EnvVar")
    api_server = dict(component, certSANs=STRINGS)
    if not v4:
        api_server["timeoutForControlPlane"] = DUR
    image_meta = {"imageRepository": S, "imageTag": S}
    dns = dict(image_meta, **({"disabled": B} if v4 else {}))
    local_etcd = dict(image_meta, dataDir=S, extraArgs=args, serverCertSANs=STRINGS, peerCertSANs=STRINGS)
    if v4:
        local_etcd["extraEnvs"] = ListOf(env, f"[]{pkg}.EnvVar")
    etcd = Struct("Etcd", {
        "local": Struct("LocalEtcd", local_etcd),
        "external": Struct("ExternalEtcd", {"endpoints": STRINGS, "caFile": S, "certFile": S, "keyFile": S}),
    })
    networking = Struct("Networking", {"serviceSubnet": S, "podSubnet": S, "dnsDomain": S})
    cluster = dict(TYPE_META, etcd=etcd, networking=networking, kubernetesVersion=S, controlPlaneEndpoint=S,
                   apiServer=Struct("APIServer", api_server),
                   controllerManager=Struct("ControlPlaneComponent", component),
                   scheduler=Struct("ControlPlaneComponent", component),
                   dns=Struct("DNS", dns), certificatesDir=S, imageRepository=S,
                   featureGates=MapOf(B, "map[string]bool"), clusterName=S)
    if v4:
        cluster.update(proxy=Struct("Proxy", {"disabled": B}), encryptionAlgorithm=S,
                       certificateValidityPeriod=DUR, caCertificateValidityPeriod=DUR)
    taint = Struct("Taint", {"key": S, "value": S, "effect": S, "timeAdded": TIME})
    node_reg = {"name": S, "criSocket": S, "taints": ListOf(taint, "[]v1.Taint"),
                "kubeletExtraArgs": args, "ignorePreflightErrors": STRINGS, "imagePullPolicy": S}
    if v4:
        node_reg["imagePullSerial"] = B
    node_reg = Struct("NodeRegistrationOptions", node_reg)
    endpoint = Struct("APIEndpoint", {"advertiseAddress": S, "bindPort": I32})
    patches = Struct("Patches", {"directory": S})
    token = Struct("BootstrapToken", {"token": S, "description": S, "ttl": DUR, "expires": TIME,
                                      "usages": STRINGS, "groups": STRINGS})
    timeouts = Struct("Timeouts", {k: DUR for k in ("controlPlaneComponentHealthCheck", "kubeletHealthCheck",
                                                     "kubernetesAPICall", "etcdAPICall", "tlsBootstrap",
                                                     "discovery", "upgradeManifests")})
    init = dict(TYPE_META, bootstrapTokens=ListOf(token, "[]v1.BootstrapToken"), nodeRegistration=node_reg,
                localAPIEndpoint=endpoint, certificateKey=S, skipPhases=STRINGS, patches=patches)
    discovery = {
        "bootstrapToken": Struct("BootstrapTokenDiscovery", {"token": S, "apiServerEndpoint": S,
                                                             "caCertHashes": STRINGS, "unsafeSkipCAVerification": B}),
        "file": Struct("FileDiscovery", {"kubeConfigPath": S}),
        "tlsBootstrapToken": S,
    }
    if not v4:
        discovery["timeout"] = DUR
    join = dict(TYPE_META, nodeRegistration=node_reg, caCertPath=S, discovery=Struct("Discovery", discovery),
                controlPlane=Struct("JoinControlPlane", {"localAPIEndpoint": endpoint, "certificateKey": S}),
                skipPhases=STRINGS, patches=patches)
    kinds = {"InitConfiguration": Struct("InitConfiguration", init),
             "ClusterConfiguration": Struct("ClusterConfiguration", cluster)}
    if v4:
        init.update(dryRun=B, timeouts=timeouts)
        join.update(dryRun=B, timeouts=timeouts)
        kinds["ResetConfiguration"] = Struct("ResetConfiguration", dict(
            TYPE_META, cleanupTmpDir=B, certificatesDir=S, criSocket=S, dryRun=B, force=B,
            ignorePreflightErrors=STRINGS, skipPhases=STRINGS, unmountFlags=STRINGS, timeouts=timeouts))
        kinds["UpgradeConfiguration"] = Struct("UpgradeConfiguration", dict(
            TYPE_META, apply=ANY, diff=ANY, node=ANY, plan=ANY, timeouts=timeouts))
    kinds["JoinConfiguration"] = Struct("JoinConfiguration", join)
    return kinds


KUBEADM = {"v1beta3": _kubeadm("v1beta3"), "v1beta4": _kubeadm("v1beta4")}

_KUBELET_FIELDS = """
enableServer:B staticPodPath:S podLogsDir:S syncFrequency:D fileCheckFrequency:D httpCheckFrequency:D
staticPodURL:S staticPodURLHeader:A address:S port:I readOnlyPort:I tlsCertFile:S tlsPrivateKeyFile:S
tlsCipherSuites:L tlsCurvePreferences:A tlsMinVersion:S rotateCertificates:B serverTLSBootstrap:B
registryPullQPS:I registryBurst:I imagePullCredentialsVerificationPolicy:S preloadedImagesVerificationAllowlist:L
eventRecordQPS:I eventBurst:I enableDebuggingHandlers:B enableContentionProfiling:B healthzPort:I
healthzBindAddress:S oomScoreAdj:I clusterDomain:S clusterDNS:L streamingConnectionIdleTimeout:D
nodeStatusUpdateFrequency:D nodeStatusReportFrequency:D nodeLeaseDurationSeconds:I imageMinimumGCAge:D
imageMaximumGCAge:D imageGCHighThresholdPercent:I imageGCLowThresholdPercent:I volumeStatsAggPeriod:D
kubeletCgroups:S systemCgroups:S cgroupRoot:S cgroupsPerQOS:B cgroupDriver:S cpuManagerPolicy:S
singleProcessOOMKill:B cpuManagerPolicyOptions:A cpuManagerReconcilePeriod:D draManagerReconcilePeriod:D
memoryManagerPolicy:S topologyManagerPolicy:S topologyManagerScope:S topologyManagerPolicyOptions:A
qosReserved:A runtimeRequestTimeout:D hairpinMode:S maxPods:I podCIDR:S podPidsLimit:I resolvConf:S
runOnce:B cpuCFSQuota:B cpuCFSQuotaPeriod:D nodeStatusMaxImages:I maxOpenFiles:I contentType:S kubeAPIQPS:I
kubeAPIBurst:I serializeImagePulls:B maxParallelImagePulls:I evictionHard:A evictionSoft:A
evictionSoftGracePeriod:A evictionPressureTransitionPeriod:D evictionMaxPodGracePeriod:I
evictionMinimumReclaim:A mergeDefaultEvictionSettings:B podsPerCore:I enableControllerAttachDetach:B
protectKernelDefaults:B makeIPTablesUtilChains:B iptablesMasqueradeBit:I iptablesDropBit:I featureGates:A
failSwapOn:B memorySwap:A containerLogMaxSize:S containerLogMaxFiles:I containerLogMaxWorkers:I
containerLogMonitorInterval:D configMapAndSecretChangeDetectionStrategy:S systemReserved:A kubeReserved:A
reservedSystemCPUs:S showHiddenMetricsForVersion:S systemReservedCgroup:S kubeReservedCgroup:S
enforceNodeAllocatable:L allowedUnsafeSysctls:L volumePluginDir:S providerID:S kernelMemcgNotification:B
logging:A enableSystemLogHandler:B enableSystemLogQuery:B shutdownGracePeriod:D
shutdownGracePeriodCriticalPods:D shutdownGracePeriodByPodPriority:A crashLoopBackOff:A reservedMemory:A
enableProfilingHandler:B enableDebugFlagsHandler:B seccompDefault:B memoryThrottlingFactor:F
memoryReservationPolicy:S registerWithTaints:A registerNode:B tracing:A localStorageCapacityIsolation:B
containerRuntimeEndpoint:S imageServiceEndpoint:S failCgroupV1:B userNamespaces:A
"""

_KUBE_PROXY_FIELDS = """
featureGates:A logging:A hostnameOverride:S bindAddress:S healthzBindAddress:S metricsBindAddress:S
bindAddressHardFail:B enableProfiling:B showHiddenMetricsForVersion:S mode:S detectLocalMode:S clusterCIDR:S
nodePortAddresses:L oomScoreAdj:I configSyncPeriod:D portRange:S windowsRunAsService:B
"""

_LEAF = {"S": S, "B": B, "I": I64, "D": DUR, "F": F64, "A": ANY, "L": STRINGS}


def _fields(spec):
    out = {}
    for item in spec.split():
        name, kind = item.split(":")
        out[name] = _LEAF[kind]
    return out


def _kubelet():
    fields = dict(TYPE_META, **_fields(_KUBELET_FIELDS))
    fields["authentication"] = Struct("KubeletAuthentication", {
        "x509": Struct("KubeletX509Authentication", {"clientCAFile": S}),
        "webhook": Struct("KubeletWebhookAuthentication", {"enabled": B, "cacheTTL": DUR}),
        "anonymous": Struct("KubeletAnonymousAuthentication", {"enabled": B}),
    })
    fields["authorization"] = Struct("KubeletAuthorization", {
        "mode": S,
        "webhook": Struct("KubeletWebhookAuthorization", {"cacheAuthorizedTTL": DUR, "cacheUnauthorizedTTL": DUR}),
    })
    return Struct("KubeletConfiguration", fields)


def _kube_proxy():
    fields = dict(TYPE_META, **_fields(_KUBE_PROXY_FIELDS))
    sync = {"syncPeriod": DUR, "minSyncPeriod": DUR}
    fields["clientConnection"] = Struct("ClientConnectionConfiguration", {
        "kubeconfig": S, "acceptContentTypes": S, "contentType": S, "qps": F64, "burst": I32})
    fields["iptables"] = Struct("KubeProxyIPTablesConfiguration", dict(
        sync, masqueradeBit=I32, masqueradeAll=B, localhostNodePorts=B, snatNodeInternalIP=B))
    fields["ipvs"] = Struct("KubeProxyIPVSConfiguration", dict(
        sync, scheduler=S, excludeCIDRs=STRINGS, strictARP=B, tcpTimeout=DUR, tcpFinTimeout=DUR, udpTimeout=DUR))
    fields["nftables"] = Struct("KubeProxyNFTablesConfiguration", dict(sync, masqueradeBit=I32, masqueradeAll=B))
    fields["winkernel"] = Struct("KubeProxyWinkernelConfiguration", {
        "networkName": S, "sourceVip": S, "enableDSR": B, "rootHnsEndpointName": S, "forwardHealthCheckVip": B})
    fields["detectLocal"] = Struct("DetectLocalConfiguration", {"bridgeInterface": S, "interfaceNamePrefix": S})
    fields["conntrack"] = Struct("KubeProxyConntrackConfiguration", {
        "maxPerCore": I32, "min": I32, "tcpEstablishedTimeout": DUR, "tcpCloseWaitTimeout": DUR,
        "tcpBeLiberal": B, "udpTimeout": DUR, "udpStreamTimeout": DUR})
    return Struct("KubeProxyConfiguration", fields)


KUBELET_GROUP, KUBELET_VERSION = "kubelet.config.k8s.io", "v1beta1"
KUBE_PROXY_GROUP, KUBE_PROXY_VERSION = "kubeproxy.config.k8s.io", "v1alpha1"
COMPONENTS = {
    (KUBELET_GROUP, KUBELET_VERSION, "KubeletConfiguration"): _kubelet(),
    (KUBE_PROXY_GROUP, KUBE_PROXY_VERSION, "KubeProxyConfiguration"): _kube_proxy(),
}
