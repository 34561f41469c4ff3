"""zot's access control as zot itself decides it: enough to ask who may do what to which repository.

Every rule below was read in project-zot/zot at tag v2.1.18 (commit 7bb211bcd4352b90f3e99752607fbd1f050bf7ca),
the appVersion of the zot chart Shipway pins (shared/charts/zot-0.1.122/Chart.yaml). Where a rule lives:

Configuration (pkg/cli/server/root.go LoadConfiguration; spf13/viper v1.21.0 util.go insensitiviseMap)
  C1. viper lower-cases every key of the file, nested maps included, so the repository patterns (keys of
      accessControl.repositories) are lower-cased before zot sees them; user names (list values) are not.
  C2. viper.UnmarshalExact then refuses the file when a key names no field (metaData.Unused, "failed to load
      config due to unknown keys"); field names match case-insensitively (pkg/api/config/config.go structs
      Config, GlobalStorageConfig, LogConfig, HTTPConfig, AuthConfig, AuthHTPasswd, AccessControlConfig,
      PolicyGroup, Policy, Metrics, Group; pkg/extensions/config/config.go ExtensionConfig and its parts).
      Sections Shipway does not write are checked one level deep only.
  C3. validateAuthzPolicies: with accessControl set, zot refuses to start unless htpasswd (auth.htpasswd.path
      non-empty), LDAP, OpenID, API keys, mTLS or bearer authenticates, or the policies are anonymous-only.
  C4. validateConfiguration: every repository pattern must pass doublestar.ValidatePattern.
  C5. Actions are free strings: an unknown one ("write", "Read") is accepted and grants nothing, so zot does
      not catch it; `unknown_actions` does (pkg/api/constants/consts.go names read, create, update, delete
      and the behaviour action detectManifestCollision).

Matching (github.com/bmatcuk/doublestar/v4 Match, imported as glob by pkg/api/authz.go)
  G1. Pattern and name are split on "/"; `*` matches any run of non-"/" characters, `?` one non-"/"
      character, `[...]` (negated by ! or ^, with ranges) one character; matching is case-sensitive.
  G2. A `**` that is a whole segment matches zero or more whole segments: `a/**` matches `a`, `a/`, `a/b`
      and `a/b/c` (match.go: a pattern ending in `/**` matches the rest; isZeroLengthPattern lets `/**`
      match nothing); `**` alone matches every name. `**` inside a segment (`abc**`) is a single `*`.
  G3. Names are not cleaned: `teamb/../teama/x` is matched segment by segment, `..` included.
  zot's go.sum pins doublestar v4.10.0; the snapshot read was bmatcuk/doublestar 9fded31 (after v4.9.1).
  `glob_match` covers literals, `*`, `?`, classes and whole-segment `**`; `{a,b}`, `\\` escapes and empty
  segments raise Unsupported rather than guess.

Deciding (pkg/api/authz.go)
  A1. AccessController.can: the policy group is the one under the LONGEST pattern (in bytes) that matches the
      repository; shorter matching patterns are not consulted (no union). No match: no group. Two equally
      long matching patterns: Go's map order (random) picks one, so `Zot.group` refuses that as Ambiguous.
  A2. isPermitted, in the group: a policy grants when the user is in its users (or one of the user's groups,
      from accessControl.groups, is in its groups) and the action in its actions; else defaultPolicy grants
      its actions to any authenticated user; else anonymousPolicy grants its actions to the anonymous user.
      A missing or empty list grants nothing.
  A3. can: when the group did not grant, adminPolicy grants its actions on every repository to its users and
      groups.
  A4. DistSpecAuthzHandler: GET and HEAD are read; DELETE is delete; PUT, PATCH and POST are create, except on
      a route with a {reference} (manifests) naming a tag the repository already has: update. So moving a
      tag needs update, a new tag or a push by digest only create, and deleting a manifest or blob delete.
  A5. getGlobPatterns with pkg/requestcontext/user_access_control.go Can/matchesRepo: /v2/_catalog (and the
      search extension) lists a repository when the same longest-match rule grants read; an admin
      (adminPolicy user) sees every repository.
  A6. Blob mount (routes.go CreateBlobUpload ?mount=, canMount): the blob is linked only if the user may
      read some repository already holding it; otherwise a plain upload starts.

Routing (pkg/api/routes.go, pkg/regexp/regexp.go NameRegexp)
  R1. The dist-spec routes take `{name}` only when it matches the distribution name grammar: components of
      lower-case letters and digits, joined inside by one `.`, one or two `_` or any run of `-`, separated
      by `/`. Any other name (`TeamA/x`, `teamb/../teama/x`) matches no route: 404 before any authorization.

Authentication (pkg/api/authn.go, tryAuthnHandlers)
  N1. A request without credentials goes on as the anonymous user only when some repository has an
      anonymousPolicy; otherwise it gets 401. A wrong password is always 401.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

READ, CREATE, UPDATE, DELETE = "read", "create", "update", "delete"
METHOD_ACTIONS = (READ, CREATE, UPDATE, DELETE)
KNOWN_ACTIONS = frozenset({*METHOD_ACTIONS, "detectManifestCollision"})
ANONYMOUS = ""

# R1, written from the grammar in pkg/regexp/regexp.go (alphaNumeric, separator, nameComponent, Name).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-*)[a-z0-9]+)*"
REPOSITORY_NAME = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")


class BadPattern(ValueError):
    """A pattern doublestar refuses (ErrBadPattern): zot does not start with it (C4)."""


class Unsupported(ValueError):
    """Pattern syntax this evaluator does not model; refused rather than guessed."""


class Ambiguous(ValueError):
    """Two equally long patterns match one repository: zot's choice between them is random (A1)."""


_DOUBLESTAR = None  # a whole `**` segment


def _class(segment: str, start: int) -> tuple[str, int]:
    """The regex of the `[...]` class opening at segment[start], and the index after its `]` (G1)."""
    index = start + 1
    negate = index < len(segment) and segment[index] in "!^"
    if negate:
        index += 1
    if index >= len(segment) or segment[index] == "]":
        raise BadPattern(f"{segment!r}: an empty or unterminated character class")
    items = []
    while index < len(segment) and segment[index] != "]":
        char = segment[index]
        if char == "\\":
            raise Unsupported(f"{segment!r}: escapes are not modelled")
        # lo-hi is a range unless the `-` is last; after a range, a `-` is a plain character again.
        if index + 2 < len(segment) and segment[index + 1] == "-" and segment[index + 2] != "]":
            low, high = char, segment[index + 2]
            if low > high:
                raise Unsupported(f"{segment!r}: a reversed range is not modelled")
            items.append(f"{re.escape(low)}-{re.escape(high)}")
            index += 3
        else:
            items.append(re.escape(char))
            index += 1
    if index >= len(segment):
        raise BadPattern(f"{segment!r}: a character class without its closing ]")
    return f"[{'^' if negate else ''}{''.join(items)}]", index + 1


def _segment(segment: str) -> re.Pattern[str]:
    """One pattern segment (no `/`) as a regex over one name segment (G1, G2 for `**` inside a segment)."""
    parts, index = [], 0
    while index < len(segment):
        char = segment[index]
        if char == "*":
            parts.append("[^/]*")
            index += 1
        elif char == "?":
            parts.append("[^/]")
            index += 1
        elif char == "[":
            part, index = _class(segment, index)
            parts.append(part)
        elif char in "{}\\":
            raise Unsupported(f"{segment!r}: alternatives and escapes are not modelled")
        else:
            parts.append(re.escape(char))
            index += 1
    return re.compile("".join(parts))


@lru_cache(maxsize=None)
def compile_pattern(pattern: str) -> tuple[re.Pattern[str] | None, ...]:
    """A pattern as its segments: a regex each, None for a whole-segment `**`; BadPattern or Unsupported."""
    segments = pattern.split("/")
    if "" in segments:
        raise Unsupported(f"{pattern!r}: empty segments (a leading, trailing or doubled /) are not modelled")
    compiled = tuple(_DOUBLESTAR if segment == "**" else _segment(segment) for segment in segments)
    if any(a is _DOUBLESTAR and b is _DOUBLESTAR for a, b in zip(compiled, compiled[1:])):
        raise Unsupported(f"{pattern!r}: adjacent ** segments are not modelled")
    return compiled


def glob_match(pattern: str, name: str) -> bool:
    """doublestar.Match(pattern, name) for the modelled syntax (G1-G3)."""
    segments = compile_pattern(pattern)
    parts = name.split("/")

    @lru_cache(maxsize=None)
    def match(at: int, on: int) -> bool:
        if at == len(segments):
            return on == len(parts)
        segment = segments[at]
        if segment is _DOUBLESTAR:
            # Last: the rest of the name, even none of it (`a/**` matches `a`). Otherwise any number of segments.
            return at == len(segments) - 1 or any(match(at + 1, skip) for skip in range(on, len(parts) + 1))
        return on < len(parts) and segment.fullmatch(parts[on]) is not None and match(at + 1, on + 1)

    return match(0, 0)


def _lower_keys(value: Any) -> Any:
    """The config as viper hands it to zot: every mapping key lower-cased (C1)."""
    if isinstance(value, dict):
        return {str(key).lower(): _lower_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_lower_keys(item) for item in value]
    return value


@dataclass(frozen=True)
class Request:
    """One dist-spec request: who, the HTTP method, the repository and, for manifests, the reference."""

    user: str
    method: str
    repository: str
    reference: str | None = None


def action_for(method: str, reference: str | None, existing_tags: Iterable[str] = ()) -> str:
    """The action DistSpecAuthzHandler asks for (A4)."""
    if method in ("GET", "HEAD"):
        return READ
    if method == "DELETE":
        return DELETE
    if method in ("PUT", "PATCH", "POST"):
        return UPDATE if reference is not None and reference in set(existing_tags) else CREATE
    raise ValueError(f"{method}: not a dist-spec method")


class Zot:
    """One zot config.json's access control, decided as zot v2.1.18 does."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = _lower_keys(config)
        control = self.config.get("http", {}).get("accesscontrol") or {}
        self.repositories: dict[str, dict[str, Any]] = control.get("repositories") or {}
        self.admin: dict[str, Any] = control.get("adminpolicy") or {}
        self.groups: dict[str, dict[str, Any]] = control.get("groups") or {}

    def group_of(self, user: str) -> list[str]:
        """The accessControl groups naming the user (getUserGroups)."""
        return [name for name, group in self.groups.items() if user and user in (group.get("users") or [])]

    def pattern(self, repository: str) -> str | None:
        """The longest pattern matching the repository (A1), None if none does; Ambiguous on a tie."""
        matched = [pattern for pattern in self.repositories if glob_match(pattern, repository)]
        if not matched:
            return None
        longest = max(len(pattern.encode()) for pattern in matched)
        best = [pattern for pattern in matched if len(pattern.encode()) == longest]
        if len(best) > 1:
            raise Ambiguous(f"{repository!r} matches {best}, equally long: zot picks one at random")
        return best[0]

    def _permits(self, group: dict[str, Any], user: str, action: str) -> bool:
        """isPermitted (A2)."""
        groups = self.group_of(user)
        for policy in group.get("policies") or []:
            if action not in (policy.get("actions") or []):
                continue
            if user in (policy.get("users") or []) or set(groups) & set(policy.get("groups") or []):
                return True
        if user != ANONYMOUS and action in (group.get("defaultpolicy") or []):
            return True
        return user == ANONYMOUS and action in (group.get("anonymouspolicy") or [])

    def is_admin(self, user: str) -> bool:
        """In adminPolicy by name or group (isAdmin)."""
        return user != ANONYMOUS and (user in (self.admin.get("users") or [])
                                      or bool(set(self.group_of(user)) & set(self.admin.get("groups") or [])))

    def can(self, user: str, action: str, repository: str) -> bool:
        """AccessController.can: the longest pattern's group, then the admin policy (A1-A3)."""
        pattern = self.pattern(repository)
        if pattern is not None and self._permits(self.repositories[pattern], user, action):
            return True
        return self.is_admin(user) and action in (self.admin.get("actions") or [])

    def anonymous_allowed(self) -> bool:
        """Whether a request without credentials gets past authentication at all (N1)."""
        return any(group.get("anonymouspolicy") for group in self.repositories.values())

    def allowed(self, request: Request, existing_tags: Iterable[str] = ()) -> bool:
        """Whether zot serves the request: routed (R1), authenticated (N1), authorized (A4, A1-A3)."""
        if REPOSITORY_NAME.fullmatch(request.repository) is None:
            return False
        if request.user == ANONYMOUS and not self.anonymous_allowed():
            return False
        return self.can(request.user, action_for(request.method, request.reference, existing_tags),
                        request.repository)

    def catalog(self, user: str, repositories: Iterable[str]) -> list[str]:
        """What /v2/_catalog lists to the user among the stored repositories (A5)."""
        if self.is_admin(user):
            return sorted(repositories)
        return sorted(repo for repo in repositories if self._catalog_reads(user, repo))

    def _catalog_reads(self, user: str, repository: str) -> bool:
        # getGlobPatterns marks each pattern granted or not for read; matchesRepo takes the longest match.
        pattern = self.pattern(repository)
        return pattern is not None and self._permits(self.repositories[pattern], user, READ)


# C2: the fields zot's structs have, by lower-cased name, for the sections Shipway's access control uses.
_POLICY = {"users": None, "actions": None, "groups": None, "conditions": None}
_POLICY_GROUP = {"policies": [_POLICY], "defaultpolicy": None, "anonymouspolicy": None}
_ACCESS_CONTROL = {"repositories": {"*": _POLICY_GROUP}, "adminpolicy": _POLICY, "groups": {"*": {"users": None}},
                   "metrics": {"users": None, "anonymouspolicy": None}}
_AUTH = {"faildelay": None, "htpasswd": {"path": None}, "ldap": None, "bearer": None, "openid": None,
         "apikey": None, "sessionkeysfile": None, "sessionhashkey": None, "sessionencryptkey": None,
         "sessiondriver": None, "securesession": None, "mtls": None}
_HTTP = {"address": None, "externalurl": None, "port": None, "alloworigin": None, "readtimeout": None,
         "writetimeout": None, "tls": None, "auth": _AUTH, "accesscontrol": _ACCESS_CONTROL, "realm": None,
         "ratelimit": None, "compat": None}
# GlobalStorageConfig (StorageConfig squashed), LogConfig, and pkg/extensions/config/config.go ExtensionConfig.
_STORAGE = {"rootdirectory": None, "maxrepos": None, "dedupe": None, "remotecache": None, "redirectbloburl": None,
            "gc": None, "commit": None, "gcdelay": None, "gcinterval": None, "retention": None,
            "storagedriver": None, "cachedriver": None, "gcmaxschedulerdelay": None, "subpaths": None,
            "fastrestart": None}
_EXTENSIONS = {"search": {"enable": None, "cve": None}, "sync": None,
               "metrics": {"enable": None, "prometheus": {"path": None}}, "scrub": {"enable": None, "interval": None},
               "lint": None, "ui": {"enable": None}, "mgmt": None, "apikey": None, "trust": None, "events": None}
_CONFIG = {"distspecversion": None, "goversion": None, "commit": None, "releasetag": None, "binarytype": None,
           "storage": _STORAGE, "http": _HTTP, "log": {"level": None, "output": None, "audit": None},
           "extensions": _EXTENSIONS, "scheduler": None, "cluster": None}


def _unknown_keys(value: Any, shape: Any, path: str) -> list[str]:
    """Keys of value that name no field of shape (None: any value; "*": a map of any keys; [x]: a list of x)."""
    if shape is None or value is None:
        return []
    if isinstance(shape, list):
        return [found for index, item in enumerate(value) for found in _unknown_keys(item, shape[0], f"{path}[{index}]")]
    if not isinstance(value, dict):
        return [f"{path}: not a mapping"]
    found: list[str] = []
    for key, item in value.items():
        if "*" in shape:
            found += _unknown_keys(item, shape["*"], f"{path}.{key}")
        elif key not in shape:
            found.append(f"{path}.{key}: no such field")
        else:
            found += _unknown_keys(item, shape[key], f"{path}.{key}")
    return found


def startup_errors(config: dict[str, Any]) -> list[str]:
    """Why zot v2.1.18 would refuse this config (C1-C4); empty when it would start."""
    lowered = _lower_keys(config)
    errors = _unknown_keys(lowered, _CONFIG, "config")
    http = lowered.get("http", {})
    control = http.get("accesscontrol")
    if control is None:
        return errors
    auth = http.get("auth") or {}
    tls = http.get("tls") or {}
    authenticates = (bool((auth.get("htpasswd") or {}).get("path")) or auth.get("ldap") is not None
                     or bool((auth.get("openid") or {}).get("providers")) or bool(auth.get("apikey"))
                     or auth.get("bearer") is not None or all(tls.get(key) for key in ("key", "cert", "cacert")))
    groups = (control.get("repositories") or {}).values()
    admin = control.get("adminpolicy") or {}
    only_anonymous = (not (admin.get("actions") or admin.get("users"))
                      and not any(group.get("defaultpolicy") for group in groups)
                      and not any(policy.get("actions") or policy.get("users")
                                  for group in groups for policy in group.get("policies") or [])
                      and any(group.get("anonymouspolicy") for group in groups))
    metrics_only = (not (admin.get("actions") or admin.get("users") or admin.get("groups"))
                    and not control.get("repositories") and not control.get("groups")
                    and READ in ((control.get("metrics") or {}).get("anonymouspolicy") or []))
    if not authenticates and not only_anonymous and not metrics_only:
        errors.append("accessControl needs htpasswd, ldap, openid, api keys, mTLS or bearer authentication "
                      "(validateAuthzPolicies)")
    for pattern in control.get("repositories") or {}:
        try:
            compile_pattern(pattern)
        except BadPattern as error:
            errors.append(f"repositories.{pattern}: {error} (doublestar.ValidatePattern)")
    if any(policy.get("conditions") for group in groups for policy in group.get("policies") or []):
        errors.append("policy conditions (CEL) are not modelled")
    return errors


def unknown_actions(config: dict[str, Any]) -> list[str]:
    """Action names zot accepts silently and that grant nothing (C5)."""
    control = _lower_keys(config).get("http", {}).get("accesscontrol") or {}
    named: list[tuple[str, list[str]]] = [("adminPolicy", (control.get("adminpolicy") or {}).get("actions") or [])]
    for pattern, group in (control.get("repositories") or {}).items():
        named += [(f"{pattern}.defaultPolicy", group.get("defaultpolicy") or []),
                  (f"{pattern}.anonymousPolicy", group.get("anonymouspolicy") or [])]
        named += [(f"{pattern}.policies[{index}]", policy.get("actions") or [])
                  for index, policy in enumerate(group.get("policies") or [])]
    return [f"{where}: {action!r}" for where, actions in named for action in actions if action not in KNOWN_ACTIONS]
