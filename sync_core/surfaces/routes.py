"""The HTTP routes: ROUTES is the single list function_app.py registers and the binding tests
compare against, documented in docs/api.md and docs/openapi.yaml. Each route's handler is in the
module of its resource: runs (run_routes.py), status and Check Connectivity (status_routes.py),
configuration (config_routes.py), employees (employee_routes.py), linking and unlinking
(connect_routes.py), explain (explain_route.py).
"""

from __future__ import annotations

from sync_core.surfaces.api import Route
from sync_core.surfaces.config_routes import config_body, tenant_config
from sync_core.surfaces.connect_routes import (
    connect,
    connect_callback,
    connect_status,
    unlink,
    unlink_params,
)
from sync_core.surfaces.employee_routes import employees_params, list_employees
from sync_core.surfaces.explain_route import explain, explain_params
from sync_core.surfaces.run_routes import (
    get_run,
    list_runs,
    run_params,
    runs_params,
    sync_body,
    sync_now,
)
from sync_core.surfaces.status_routes import check, check_body, status

# What each route needs, built by api.handle before the handler runs (api.Route says the order).
# fmt: off
ROUTES: dict[str, Route] = {
    route.function: route
    for route in (
        Route("sync_now", "sync", ("POST",), sync_now,
              parse=sync_body, service=True, tenant="body"),
        Route("get_run", "runs/{tenantId}/{runId}", ("GET",), get_run,
              parse=run_params, service=True, tenant="path"),
        Route("list_runs", "runs/{tenantId}", ("GET",), list_runs,
              parse=runs_params, service=True, tenant="path"),
        Route("status", "status", ("GET",), status, service=True),
        # The service stays open through the check, which reads Graph, not the tables.
        Route("check_connectivity", "check", ("POST",), check,
              parse=check_body, service=True, tenant="body"),
        # PUT may name a tenant not served yet: storing its first configuration registers it.
        Route("tenant_config", "config/{tenantId}", ("GET", "PUT"), tenant_config,
              parse=config_body, service=True, tenant="path", unserved=("PUT",)),
        Route("list_employees", "employees/{tenantId}", ("GET",), list_employees,
              parse=employees_params, service=True, tenant="path"),
        # connect and its callback read the Graph settings and open the service themselves:
        # connect checks returnUrl against them, the callback answers a page whatever fails.
        Route("connect", "connect", ("POST",), connect),
        # GET: the admin-consent answer (a query); POST: the sign-in's (response_mode=form_post).
        Route("connect_callback", "connect/callback", ("GET", "POST"), connect_callback),
        Route("connect_status", "connect/{requestId}", ("GET",), connect_status, service=True),
        # DELETE answers unknown_tenant itself (app/unlink.py tells a tenant it does not serve).
        Route("unlink_tenant", "tenants/{tenantId}", ("DELETE",), unlink,
              parse=unlink_params, service=True, tenant="path", unserved=("DELETE",)),
        Route("explain_user", "explain/{tenantId}/{user}", ("GET", "POST"), explain,
              parse=explain_params, service=True, graph=True, tenant="path"),
    )
}
# fmt: on
