//! gateway: the public HTTP API. Built by the gateway issue; empty until then.
