"""Command line: python -m ksef_emulator [--host H] [--port P] [--ready-file F] [--state F] ..."""

import argparse
import logging
import signal
import sys
import threading

from .emulator import Config
from .server import EmulatorServer
from .switches import SIG_001, SwitchError, parse_system_warning, validate


def build_parser():
    parser = argparse.ArgumentParser(prog='python -m ksef_emulator',
                                     description='Local emulator of the KSeF API v2 (authentication and certificates).')
    parser.add_argument('--host', default='127.0.0.1', help='address to listen on (default 127.0.0.1)')
    parser.add_argument('--port', type=int, default=0, help='port; 0 picks a free port (default 0)')
    parser.add_argument('--ready-file', help='written with the base URL (e.g. https://127.0.0.1:PORT/v2) once '
                                             'connections are accepted')
    parser.add_argument('--state', help='SQLite file keeping all state across restarts (default: in memory)')
    parser.add_argument('--tls-ca-file', help='write the PEM of the CA that clients must trust to this file')
    parser.add_argument('--no-tls', action='store_true', help='serve plain HTTP')
    parser.add_argument('--processing-delay', type=float, default=1.0,
                        help='seconds until an enrollment is processed (default 1)')
    parser.add_argument('--auth-processing-delay', type=float, default=0.2,
                        help='seconds GET /auth/{referenceNumber} reports 100 before the result (default 0.2)')
    parser.add_argument('--record-dir', help='write <seq>.json and <seq>.body for every API request')
    parser.add_argument('--access-token-ttl', type=int, default=900, help='access token lifetime in seconds (default 900)')
    parser.add_argument('--rate-limits', choices=('production', 'off'), default='production',
                        help='enforce KSeF production rate limits (default) or none')
    parser.add_argument('--certificate-validity-days', type=float, default=730, metavar='DAYS',
                        help='validity of issued KSeF certificates (default 730, as KSeF); shorter only to simulate '
                             'many lifetimes quickly (tests/lifecycle)')
    parser.add_argument('--verbose', action='store_true', help='log every request to stderr')
    switches = parser.add_argument_group('switches', 'behaviours of real KSeF, off by default; also changed at run '
                                                     'time with PUT /emulator/switches')
    switches.add_argument('--revocation-blocked-seconds', type=float, default=0, metavar='S',
                          help='a revoked certificate reads Blocked for S seconds, then Revoked (default 0: at once)')
    switches.add_argument('--enrollment-retention', type=float, metavar='S',
                          help='GET /certificates/enrollments/{ref} answers 410 Gone S seconds after the enrollment '
                               '(default: 30 days, as KSeF)')
    switches.add_argument('--auth-retention', type=float, metavar='S',
                          help='GET /auth/{ref} answers 410 Gone S seconds after the login started (default: 7 days)')
    switches.add_argument('--rate-limit-escalation', type=float, default=1, metavar='FACTOR',
                          help='each further 429 of a caller within an hour blocks FACTOR times longer than the last '
                               '(default 1: no escalation)')
    switches.add_argument('--refuse-reused-key', action='store_true',
                          help='end an enrollment with status 400 when its key is already certified for the same subject')
    switches.add_argument('--system-warning', action='append', default=[], metavar='[METHOD ]ROUTE=WARNING',
                          help="add X-System-Warning: WARNING to the answers of ROUTE (an OpenAPI template or '*'), "
                               "e.g. 'POST /auth/xades-signature=%s'; repeatable" % SIG_001.replace('%', '%%'))
    return parser


def switches_from_args(args):
    """The starting switch values of the command line (switches.DEFAULTS keys), validated."""
    values = {'revocationBlockedSeconds': args.revocation_blocked_seconds,
              'enrollmentRetentionSeconds': args.enrollment_retention, 'authRetentionSeconds': args.auth_retention,
              'rateLimitEscalation': args.rate_limit_escalation, 'refuseReusedKey': args.refuse_reused_key,
              'systemWarnings': [parse_system_warning(item) for item in args.system_warning]}
    return validate(values)


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr,
                        format='%(asctime)s %(name)s %(levelname)s %(message)s')
    if args.processing_delay < 0 or args.auth_processing_delay < 0 or args.access_token_ttl < 1:
        build_parser().error('delays must be >= 0 and --access-token-ttl >= 1')
    if args.certificate_validity_days <= 0:
        build_parser().error('--certificate-validity-days must be > 0')
    try:
        switches = switches_from_args(args)
    except SwitchError as exc:
        build_parser().error(str(exc))
    config = Config(state_path=args.state, processing_delay=args.processing_delay,
                    auth_processing_delay=args.auth_processing_delay, access_token_ttl=args.access_token_ttl,
                    rate_limits=args.rate_limits, record_dir=args.record_dir, switches=switches,
                    certificate_validity_days=args.certificate_validity_days)
    server = EmulatorServer(config, host=args.host, port=args.port, tls=not args.no_tls,
                            tls_ca_file=args.tls_ca_file, ready_file=args.ready_file)

    def stop(signum, _frame):
        # shutdown() waits for serve_forever to return, so it must run outside the serving thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print('KSeF emulator listening on %s' % server.base_url, file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
