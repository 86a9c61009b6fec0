def test_the_daemon_warns_at_start_of_an_endpoint_beyond_loopback(tmp_path: Path) -> None:
    port = free_port()
    practice = Practice(tmp_path, extra=f'\n[metrics]\nlisten = "0.0.0.0:{port}"\n')
    with daemon_running(practice) as daemon:
        took, body = _scrape(f"http://127.0.0.1:{port}/metrics")
    assert "\ncoffre_up 1.0\n" in body
    log = daemon.logs()
    assert f'configuration: metrics.listen: "0.0.0.0:{port}" reaches beyond the box' in log
    assert FIREWALL_NOTE in log
