"""What manager fields read of Graph beyond the listing and the delta rounds.

Manager fields read the listing with `$expand=manager($select=...)`. Graph's docs disagree on
what `$expand` allows: the known issues (id 13635: "$expand on directory objects returns a
maximum of 100 objects", whatever `$top` asks) and concepts/aad-advanced-queries.md ("$expand
is not currently supported with advanced queries") against the manager page (api-reference
user-list-manager.md), which names no page cap and shows `$expand=manager($levels=max)` with
`ConsistencyLevel: eventual` (for a single user; `$levels` is not supported on the list). The
simulator follows the first two; so pages of 100, and a `filter.odata` listing (always an
advanced query here) looks managers up instead (core/manager_pass.py). Measured in
bench/README.md "Manager fields".
"""

from __future__ import annotations

from collections.abc import Iterable

EXPANDED_PAGE_SIZE = 100  # the known-issues cap on pages with `$expand` (above)


def expand_manager(manager_select: Iterable[str]) -> str:
    return f"manager($select={','.join(sorted(manager_select))})"
