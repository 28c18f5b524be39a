"""The developer workflow: the functions ``vudo <command>`` and ``vudo tui`` both call.

Every function takes explicit paths (``path``/``home``), returns a value and prints
nothing; long work reports through ``progress: Callable[[str], None]``; clocks are
parameters. Failures raise :class:`vudo.errors.VudoError` subclasses.

Project (``vudo.project.layout``, ``.new``, ``.build``, ``.testing``, ``.workflow``)::

    open_project(path) -> Project(root, manifest_path, manifest, language, source;
                                  .name .version .wasm_path .package_path .is_stale())
    new_project(name, *, template="wat", target="wasi", parent, home) -> NewProject
    build_project(path, *, release=False, progress, home=None, locked=False) -> BuildResult(
                  wasm_path, size, info: ModuleInfo(imports, exports), warnings, lockfile)
                  # with home: dependencies resolved and spirit.lock written first
    run_tests(path, *, home, filter=None, fuel, timeout, progress, on_case, clock)
        -> TestReport(name, cases: tuple[TestCase], .passed .failed .summary)
    check_project(path, *, home, progress) -> CheckReport(problems: tuple[Problem(area,
                  severity, message, hint)], .errors .ok, checked, package, signer)
    fmt_project(path, *, check=False) -> FmtResult(path, changed, formatted)
    doc_project(path, *, output=None, progress) -> DocResult(markdown, html, exports)

Running (``vudo.project.runner``)::

    resolve_target(spec, *, cwd, home, progress) -> RunTarget   # dir, .wasm/.wat,
        .spirit (verified) or installed name[@req]; project_target(root, progress=, build=)
    run_spirit(target, RunOptions(function, args: tuple[str], fuel, timeout, memory,
               grant, deny), *, home, on_event, engine=None, control=None) -> RunResult(
               function, args, results, receipt (priced), granted, not_granted, error)
    prepare_run(target, options, *, engine, home, services=None) -> PreparedRun(module,
               function, args, config, granted, not_granted)  # to drive a Sandbox
               yourself: Sandbox(engine, p.module, p.config); instantiate(); call(...)
    needs_services(module) -> bool; priced(receipt, pricing, prices=None) -> Receipt
    convert_args(function, params, words) -> list; RunControl().terminate(reason)
    RunHandle(target, options, *, home, engine=None, services=None, on_event=None)
        .start() .call_again() -> RunResult; .toggle_pause() .refuel(n) .stop(reason)
        .live .out_of_fuel .can_refuel .receipt() .close()  # what the TUI drives

Packages (``vudo.project.packaging``)::

    pack_project(path, *, output=None, progress) -> PackResult(path, name, version, ...)
    sign_project_package(package | None, *, project_dir, home, key=None) -> SignResult
    newest_package(project_dir) -> Path;  verify(package) -> VerifiedPackage
    publish(package | None, *, project_dir, home, registry=None) -> PublishOutcome

Installing (``vudo.project.installing``; consent in ``.consent``)::

    ConsentRequest(name, version, signer, author, capabilities, previous)  # .added .widens
    decide_consent(request, *, yes, grant, deny) -> ConsentDecision | None (must ask)
    prepare_summon(source, *, home, progress) -> Prepared(package, request, built_from)
    install_prepared(prepared, decision, *, home, trust_signer=False) -> SummonResult
    install(spec, *, home, consent: (request, is_root) -> ConsentDecision, registries=())
    upgrade(name | None, *, home, consent, registries=()) -> list[UpgradeOutcome]
    uninstall(spec, *, home) -> Uninstalled(removed, broken_dependents)
    user_policy(home) -> TrustPolicy

What is installed (``vudo.project.installed``)::

    list_installed(home), search_installed(query, *, home, capability, author) ->
    IndexedSpirit rows (the index read with sqlite3 alone),
    info_installed(spec, *, home) -> InstalledInfo(info, grants),
    installed_spirit(spec, *, home) -> LoadedSpirit(manifest, module, signer, grants,
    installed); split_spec("name@req")

Grants (``vudo.project.grants``)::

    grant_capability(name, cap, *, home, scope, expires), revoke_capability(name, cap, *,
    home) -> Revoked, grant_rows(stored) -> GrantRow rows; sign_grants(pairs, *, home, now) ->
    (grants, user key); parse_expiry(text, *, now); a run's grants:
    ``vudo.project.grant_cache.run_grants`` (sign_grants, kept for the next run)

Dependencies (``vudo.project.dependencies``)::

    resolve_project_dependencies(root, *, home, registries=(), locked=False) -> Resolution
    lock_project(root, *, home, locked=False) -> Path | None   # writes spirit.lock

Registries (``vudo.project.registries``)::

    open_registries(locations, *, home) -> list[Registry]; local_registry(home)
    browse(query, *, home, registries=(), capability=None) -> list[BrowseEntry(name,
           version, description, capabilities, signer, author, registry,
           installed_version; .upgradable)]                # what registries offer

Repair (``vudo.project.repair``)::

    repair_store(home) -> RepairOutcome

Credit (``vudo.project.credit``: deposit, fund, history) and workspace trust
(``vudo.project.workspace``: check_trust, trust, untrust) have their own modules.

Layers, lowest first (a module imports only from the ones before it): layout, workspace;
installed, grants, consent; registries; dependencies; build; packaging; installing, repair;
runner; credit, testing, workflow, new. ``tests/test_layering.py`` checks there is no cycle.
"""
