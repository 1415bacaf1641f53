"""Implementations of ClusterView: static (files) and live (watches)."""
