"""Command line: python -m ksef_emulator [--host H] [--port P] [--ready-file F] [--state F] ..."""

import argparse
import logging
import signal
import sys
import threading

from .emulator import Config
from .server import EmulatorServer


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
    parser.add_argument('--verbose', action='store_true', help='log every request to stderr')
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr,
                        format='%(asctime)s %(name)s %(levelname)s %(message)s')
    if args.processing_delay < 0 or args.auth_processing_delay < 0 or args.access_token_ttl < 1:
        build_parser().error('delays must be >= 0 and --access-token-ttl >= 1')
    config = Config(state_path=args.state, processing_delay=args.processing_delay,
                    auth_processing_delay=args.auth_processing_delay, access_token_ttl=args.access_token_ttl,
                    rate_limits=args.rate_limits, record_dir=args.record_dir)
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
