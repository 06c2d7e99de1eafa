using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using MiniVmm.Host.CommandLine;
using MiniVmm.Host.Tests.Support;
using MiniVmm.Migration.Report;
using MiniVmm.Migration.Report.Model;

namespace MiniVmm.Host.Tests.Reports;

/// <summary>
/// <c>migrate</c>'s <c>x-report</c> on a real MiniVmm→MiniVmm migration (real processes, a Rust
/// guest harness on each side, an emulated VFIO device with precopy, return-path and
/// switchover-ack, as the demo runs): the files it writes, what they say against
/// <c>query-migrate</c>, the page in a real headless Chromium, and <c>minivmm report</c> on its data.
/// One migration serves every test of the fixture.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class MigrationReportProcessTests
{
    private static readonly string[] Machine =
        ["-M", "none", "-m", "64M", "-nodefaults", "-display", "none", "-device", "vfio-emu,id=dev0,p2p=on,precopy=on,state-size=1"];

    private readonly List<IAsyncDisposable> _started = [];
    private TemporaryDirectory _temp = null!;
    private JsonObject _queryMigrate = null!;
    private string _html = null!;
    private string _json = null!;

    [OneTimeSetUp]
    public async Task MigrateWithAReport()
    {
        _temp = new TemporaryDirectory();
        _html = _temp.File("report.html");
        _json = _temp.File("report.json");
        string uri = $"tcp:127.0.0.1:{GuestRam.FreeTcpPort()}";
        Vm destination = await StartAsync("dst", ["-incoming", uri]);
        await destination.WaitUntilListeningAsync();
        Vm source = await StartAsync("src", [], "--rate", "20000");
        foreach (Vm vm in new[] { source, destination })
        {
            await vm.ReturnOfAsync("migrate-set-capabilities", new JsonObject
            {
                ["capabilities"] = new JsonArray(
                    new JsonObject { ["capability"] = "events", ["state"] = true },
                    new JsonObject { ["capability"] = "return-path", ["state"] = true },
                    new JsonObject { ["capability"] = "switchover-ack", ["state"] = true }),
            });
        }

        await source.SetParametersAsync(new() { ["max-bandwidth"] = 128L << 20 });
        await Task.Delay(200); // the guest writes pages before the migration starts

        await source.ReturnOfAsync("migrate", new JsonObject { ["uri"] = uri, ["x-report"] = _html });
        _queryMigrate = await source.WaitForCompletedAsync();
        await destination.WaitForCompletedAsync();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!File.Exists(_html))
        {
            Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(20)), $"no report at {_html}; source stderr:\n{source.Process.Stderr}");
            await Task.Delay(20);
        }

        // The report is written after the migration ended: query-migrate says the same now.
        Assert.That((await source.QueryMigrateAsync()).ToJsonString(), Is.EqualTo(_queryMigrate.ToJsonString()));
    }

    [OneTimeTearDown]
    public async Task StopEverything()
    {
        for (int i = _started.Count - 1; i >= 0; i--)
        {
            await _started[i].DisposeAsync();
        }

        _temp.Dispose();
    }

    [Test]
    public void The_summary_shows_query_migrates_numbers()
    {
        IReadOnlyDictionary<string, string> summary = ReportHtml.SummaryValues(File.ReadAllText(_html));

        Assert.That(summary.Keys, Is.SupersetOf(new[]
        {
            "status", "total-time", "downtime", "setup-time", "ram.transferred", "ram.mbps", "ram.dirty-sync-count", "ram.normal",
            "ram.duplicate", "ram.precopy-bytes", "ram.downtime-bytes", "vfio.transferred",
        }));
        Assert.Multiple(() =>
        {
            foreach ((string key, string value) in summary)
            {
                Assert.That(value, Is.EqualTo(QueryMigrateValue(key)), key);
            }
        });
    }

    [Test]
    public void The_data_beside_the_page_has_the_switchover_the_devices_and_the_harness()
    {
        MigrationReport report = MigrationReportFile.ReadJson(_json);

        Assert.Multiple(() =>
        {
            Assert.That(report.Summary.Status, Is.EqualTo("completed"));
            Assert.That(report.Switchover, Is.Not.Null, "a completed migration switched over");
            Assert.That(report.Switchover!.Pass, Is.GreaterThanOrEqualTo(1));
            Assert.That(report.Switchover.SwitchoverAckRequired, Is.True, "switchover-ack was on and the VM ran");
            Assert.That(report.Events.Any(e => e.Name == "harness PAUSE" && e.Detail!.StartsWith("ok after", StringComparison.Ordinal)), Is.True,
                "the harness coupling noted its PAUSE");
            Assert.That(report.Events.Any(e => e.Name == "VFIO_MIGRATION" && e.Detail!.Contains("stop-copy", StringComparison.Ordinal)), Is.True);
            Assert.That(report.Samples, Is.Not.Empty);
            Assert.That(report.Passes, Has.Count.GreaterThanOrEqualTo(1));
            Assert.That(report.Uri, Does.StartWith("tcp:127.0.0.1:"));
            Assert.That(report.Settings.Capabilities, Is.EquivalentTo(new[] { "events", "return-path", "switchover-ack" }));
        });
        var timeline = ReportHtml.Plots(File.ReadAllText(_html)).Single(p => p.Name == "timeline");
        Assert.That(ReportHtml.Series(timeline.Svg), Is.EqualTo(new[] { "status", "run-state", "phase", "vfio:dev0", "harness" }));
    }

    [Test]
    public async Task The_page_loads_in_Chromium_without_console_errors_with_every_series_drawn_and_query_migrates_numbers()
    {
        await using HeadlessChromium browser = await StartChromiumAsync();

        await browser.LoadAsync(_html);

        Assert.That(browser.ConsoleErrors, Is.Empty, "console errors");
        JsonObject page = (await browser.EvaluateAsync("""
            JSON.stringify({
              plots: [...document.querySelectorAll('svg.plot')].map(svg => ({
                name: svg.dataset.plot,
                width: svg.getBoundingClientRect().width,
                series: [...svg.querySelectorAll('g.series')].map(g => ({
                  name: g.dataset.series,
                  drawn: [...g.querySelectorAll('path, rect')].some(e =>
                    e.tagName === 'path' ? e.getTotalLength() > 0 : e.getBBox().width > 0),
                })),
              })),
              summary: Object.fromEntries([...document.querySelectorAll('tr[data-key]')].map(r => [r.dataset.key, r.dataset.value])),
              reason: document.querySelector('.switchover .reason').textContent,
            })
            """))!.GetValue<string>() is { } text ? JsonNode.Parse(text)!.AsObject() : [];

        var plots = page["plots"]!.AsArray().Select(p => p!.AsObject()).ToDictionary(p => p["name"]!.GetValue<string>());
        var expected = new Dictionary<string, string[]>
        {
            ["pending"] = ["pending", "threshold"],
            ["rates"] = ["bandwidth", "dirty-rate"],
            ["section-bytes"] = ["ram", "vfio", "harness", "other"],
            ["pass-bytes"] = ["ram"],
            ["throttle"] = ["throttle"],
            ["timeline"] = ["status", "run-state", "phase", "vfio:dev0", "harness"],
        };
        Assert.That(plots.Keys, Is.EquivalentTo(expected.Keys));
        Assert.Multiple(() =>
        {
            foreach ((string plot, string[] series) in expected)
            {
                Assert.That(plots[plot]["width"]!.GetValue<double>(), Is.GreaterThan(300), $"{plot} is laid out");
                var drawn = plots[plot]["series"]!.AsArray().Where(s => s!["drawn"]!.GetValue<bool>()).Select(s => s!["name"]!.GetValue<string>());
                Assert.That(drawn, Is.SupersetOf(series), $"{plot}: series drawn in the browser");
            }

            foreach ((string key, JsonNode? value) in page["summary"]!.AsObject())
            {
                Assert.That(value!.GetValue<string>(), Is.EqualTo(QueryMigrateValue(key)), $"the browser's summary {key}");
            }

            Assert.That(page["summary"]!.AsObject(), Has.Count.GreaterThanOrEqualTo(12));
            Assert.That(page["reason"]!.GetValue<string>(), Does.StartWith("Switched over at "));
        });
    }

    [Test]
    public async Task The_browser_check_does_see_console_errors()
    {
        await using HeadlessChromium browser = await StartChromiumAsync();
        string page = _temp.File("broken.html");
        await File.WriteAllTextAsync(page, "<!DOCTYPE html><html><body><script>console.error('deliberate'); undefinedFunction();</script></body></html>");

        await browser.LoadAsync(page);

        Assert.That(browser.ConsoleErrors, Has.Some.Contains("deliberate"));
        Assert.That(browser.ConsoleErrors, Has.Some.Contains("undefinedFunction"));
    }

    [Test]
    public async Task Minivmm_report_renders_the_same_page_again_from_the_data()
    {
        string again = _temp.File("again.html");
        var output = new StringWriter();
        var error = new StringWriter();

        int exit = await new MiniVmmCommandLine().InvokeAsync(["report", _json, "-o", again], output, error);

        Assert.That(exit, Is.EqualTo(0), error.ToString());
        Assert.That(output.ToString().Trim(), Is.EqualTo(again));
        Assert.That(await File.ReadAllTextAsync(again), Is.EqualTo(await File.ReadAllTextAsync(_html)));
    }

    [Test]
    public async Task Migrate_refuses_an_x_report_it_could_not_write_before_migrating()
    {
        Vm vm = await StartAsync("idle", []);

        JsonObject reply = await vm.Qmp.ExecuteAsync("migrate", new JsonObject { ["uri"] = "exec:cat > /dev/null", ["x-report"] = "/nonexistent-dir/r.html" });

        Assert.That(reply["error"]?["desc"]?.GetValue<string>(), Is.EqualTo("x-report: the folder of '/nonexistent-dir/r.html' does not exist"));
        Assert.That((await vm.QueryMigrateAsync()).Count, Is.EqualTo(0), "no migration started");
    }

    [Test]
    public async Task A_failed_migration_gets_a_report_too_saying_why_it_never_switched_over()
    {
        Vm vm = await StartAsync("failing", []);
        string html = _temp.File("failed.html");

        await vm.ReturnOfAsync("migrate", new JsonObject { ["uri"] = $"unix:{_temp.File("nobody-listens.sock")}", ["x-report"] = html });
        JsonObject info = await vm.WaitForMigrationEndAsync();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!File.Exists(html))
        {
            Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(20)), "no report of the failed migration");
            await Task.Delay(20);
        }

        string page = await File.ReadAllTextAsync(html);
        Assert.That(info["status"]?.GetValue<string>(), Is.EqualTo("failed"));
        Assert.That(page, Does.Contain("data-reason=\"none\""));
        Assert.That(System.Net.WebUtility.HtmlDecode(page), Does.Contain($"No switchover: the migration failed before it switched over ({info["error-desc"]!.GetValue<string>()})."));
        Assert.That(ReportHtml.SummaryValues(page)["error-desc"], Is.EqualTo(info["error-desc"]!.GetValue<string>()));
    }

    /// <summary>A query-migrate member by path (<c>ram.transferred</c>), written as the summary's data-value writes it.</summary>
    private string QueryMigrateValue(string key)
    {
        JsonNode? node = _queryMigrate;
        foreach (string part in key.Split('.'))
        {
            node = node?[part];
        }

        return node switch
        {
            null => "(missing from query-migrate)",
            JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
            JsonValue v when key == "ram.mbps" => v.GetValue<double>().ToString("R", CultureInfo.InvariantCulture),
            JsonValue v => v.GetValue<long>().ToString(CultureInfo.InvariantCulture),
            _ => node.ToJsonString(),
        };
    }

    private static async Task<HeadlessChromium> StartChromiumAsync()
    {
        (HeadlessChromium? browser, string? why) = await HeadlessChromium.TryStartAsync();
        if (browser is null)
        {
            Assert.Ignore($"headless Chromium cannot run here: {why}");
        }

        return browser!;
    }

    private async Task<Vm> StartAsync(string name, string[] extra, params string[] harnessArguments)
    {
        string socket = _temp.File(name + ".harness");
        Vm vm = await Vm.StartAsync(VmProgram.MiniVmm, _temp, name, [.. Machine, "-guest", $"harness,socket={socket}", .. extra], _ =>
        {
            _started.Add(HarnessProcess.Start(socket, harnessArguments));
            return Task.CompletedTask;
        });
        _started.Add(vm);
        return vm;
    }
}
