"""The configs harkd ships. Installed as the package `harkd_configs`; `harkd.shipped` finds them."""
