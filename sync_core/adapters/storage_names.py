"""The names of the storage account's tables and queues (no SDK import: the Functions surface
binds to them at import time and tests/infra compares them with infra/)."""

EMPLOYEES_TABLE = "Employees"
RUNS_TABLE = "SyncRuns"
CONFIGS_TABLE = "TenantConfigs"
LEASES_TABLE = "SyncLeases"
GROUPS_TABLE = "GroupMemberships"  # scope groups' direct members (tables/group_memberships.py)
MANAGERS_TABLE = "EmployeeManagers"  # the manager index of manager fields (tables/managers.py)
TABLE_NAMES = (
    EMPLOYEES_TABLE,
    RUNS_TABLE,
    CONFIGS_TABLE,
    LEASES_TABLE,
    GROUPS_TABLE,
    MANAGERS_TABLE,
)
SYNC_QUEUE = "sync-requests"
POISON_QUEUE = f"{SYNC_QUEUE}-poison"  # where the Functions host moves a message it gave up on
