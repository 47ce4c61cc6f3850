#!/usr/bin/env python3
"""A real MIT Kerberos KDC (Debian krb5-kdc, krb5-admin-server) on loopback for the storage tests.

  storage_kdc.py ROOT PORT
Writes ROOT/krb5.conf (realm KSA.TEST, KDC at 127.0.0.1:PORT, no DNS), creates the database with
the principals modeler@KSA.TEST (keytab ROOT/client.keytab) and HTTP/127.0.0.1@KSA.TEST (keytab
ROOT/http.keytab, for the SPNEGO acceptor of the WebHDFS fake), then runs krb5kdc in the
foreground until killed. Nothing outside ROOT is touched.
"""
import os
import subprocess
import sys


def main():
    root, port = sys.argv[1], sys.argv[2]
    with open(os.path.join(root, "krb5.conf"), "w") as f:
        f.write(f"""[libdefaults]
  default_realm = KSA.TEST
  dns_lookup_realm = false
  dns_lookup_kdc = false
  dns_canonicalize_hostname = false
  rdns = false
  udp_preference_limit = 1
[realms]
  KSA.TEST = {{
    kdc = 127.0.0.1:{port}
  }}
[domain_realm]
  127.0.0.1 = KSA.TEST
""")
    with open(os.path.join(root, "kdc.conf"), "w") as f:
        f.write(f"""[kdcdefaults]
  kdc_listen = 127.0.0.1:{port}
  kdc_tcp_listen = 127.0.0.1:{port}
[realms]
  KSA.TEST = {{
    database_name = {root}/principal
    key_stash_file = {root}/stash
    acl_file = {root}/kadm5.acl
  }}
[logging]
  kdc = FILE:{root}/kdc.log
""")
    env = dict(os.environ, KRB5_CONFIG=os.path.join(root, "krb5.conf"),
               KRB5_KDC_PROFILE=os.path.join(root, "kdc.conf"))

    def run(*argv):
        subprocess.run(argv, env=env, check=True, capture_output=True)

    run("/usr/sbin/kdb5_util", "create", "-s", "-r", "KSA.TEST", "-P", "master-password")
    for principal, keytab in (("modeler@KSA.TEST", "client.keytab"),
                              ("HTTP/127.0.0.1@KSA.TEST", "http.keytab")):
        run("/usr/sbin/kadmin.local", "-q", f"addprinc -randkey {principal}")
        run("/usr/sbin/kadmin.local", "-q", f"ktadd -k {os.path.join(root, keytab)} {principal}")
    os.execve("/usr/sbin/krb5kdc", ["krb5kdc", "-n"], env)


if __name__ == "__main__":
    main()
