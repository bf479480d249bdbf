# -*- coding: utf-8 -*-
"""Test support: runtime_probe through the collection's fast path, like every shipped module."""

from __future__ import annotations

from ansible_collections.baremetal.k8s.plugins.plugin_utils.fast_path import BinaryModuleAction as ActionModule

__all__ = ["ActionModule"]
