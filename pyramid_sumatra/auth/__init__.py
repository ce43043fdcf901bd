"""Institutional login: identities an institution already keeps (LDAP / Active Directory,
OpenID Connect) instead of a second user database.

``external`` holds what every identity source shares (the identity a source reports, the
group-name rule, the "directory unavailable" error); ``ldap`` is a plugin
(``sumatra.plugins = ldap``); ``oidc`` adds browser login through an OpenID provider.
"""
