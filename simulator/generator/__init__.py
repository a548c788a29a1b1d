"""Deterministic synthetic tenants with the awkward cases a directory sync meets in real life.

Every id and choice comes from one seeded ``random.Random``, so a seed always yields the same
world (tests and benchmarks can name users by index). The mix of kinds, in share of users:

    member        80 %  full profile, licensed, SMTP/smtp/X500/SIP proxy addresses
    guest          6 %  #EXT# UPN, userType Guest, external mail; some with no proxy address, some
                        with smtp:<external>, some with SMTP:<the #EXT# form> as primary
    shared         3 %  disabled shared mailbox ("Sales Team"), unlicensed
    room           2 %  disabled room mailbox ("Room 4.12 Berlin"), unlicensed
    service        3 %  svc-... account, no job title, no mailbox
    unlicensed     3 %  member without licenses; about half without a mailbox (no mail, no
                        proxyAddresses: Exchange Online creates the mailbox with the license)
    no_email       2 %  no mail, no proxyAddresses, no otherMails
    other_mail     1 %  the only address is in otherMails

When there are at least as many users as kinds, every kind appears at least once. Across kinds,
about 15 % of people have non-ASCII names and about 5 % have apostrophes in their surname.
"""

from .assemble import KIND_SHARES, GeneratorOptions, generate_world, kind_of

__all__ = ["KIND_SHARES", "GeneratorOptions", "generate_world", "kind_of"]
