# -*- coding: utf-8 -*-
# Apache License 2.0 (see LICENSE)
"""Runs the containerd_config binary module through the collection's fast path (see plugin_utils/fast_path.py)."""

from __future__ import annotations

from ansible_collections.baremetal.k8s.plugins.plugin_utils.fast_path import BinaryModuleAction as ActionModule

__all__ = ["ActionModule"]
