//! What kubeadm_init and kubeadm_join share: the kubeadm config documents and their
//! YAML, kubeadm's version and output, bootstrap tokens, the CA public-key hash, the
//! checks of the values handed to kubeadm, and the node's kubeadm files.

pub mod config;
pub mod node;
pub mod output;
pub mod pki;
pub mod token;
pub mod validate;
pub mod version;
pub mod yaml;

pub use node::HostPaths;
pub use version::{ApiVersion, Kubeadm, Version};
