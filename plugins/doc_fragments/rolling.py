# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    # ksef_certificate's rolling renewal within KSeF's limits: module-level options and how it works.
    DOCUMENTATION = r'''
options:
  quota_forecast:
    description:
      - Read C(GET /certificates/limits) even when nothing is due, and return RV(quota) with the forecast of the
        coming renewals against the active-certificate limit. A run that enrolls reads the limits anyway and
        always returns it. Off by default so that a run with nothing due stays at one query.
    type: bool
    default: false
  release_offline_predecessors:
    description:
      - When the active-certificate limit leaves no slot for a due renewal, revoke superseded Offline certificates
        of the declared set that are still active (predecessors kept after their renewal so that QR codes II in
        circulation verify), soonest expiry first and only as many as the blocked renewals need, before the
        renewals are sent. Invoices whose QR code II was signed with a revoked certificate then fail
        verification, so this is never done without this option. The serials are returned in RV(quota).
    type: bool
    default: false
notes:
  - "B(Rolling renewal within KSeF's limits.) KSeF counts the subject's active certificates (100 per NIP) and
    its enrollment requests over 30 days (300 per NIP). A renewal holds one more active certificate until its
    predecessor is revoked, and an Offline predecessor stays active until it expires. The due certificates are
    renewed soonest expiry first, in waves that fit the free slots (C(GET /certificates/limits), read once):
    each wave is enrolled, installed and its superseded Authentication predecessors revoked before the next
    wave starts, so a fleet holding more than half of the limit renews in one run. A certificate that keeps its
    slot (Offline, new) never takes the last free slot while a renewal that gives its slot back is due.
    Enrollments beyond the hour's call budget wait for the next run (RV(action=deferred)); a certificate no
    slot or enrollment request is left for is not sent (RV(action=blocked)) and the run warns with the date
    its outage begins and what to do, while the rest of the set goes on. A blocked certificate that has no
    valid certificate any more (missing, expired, revoked) fails the run after everything else was done.
    RV(quota) gives the waves and the forecast."
'''
