using System.Diagnostics;
using System.Text.Json.Nodes;

namespace MiniVmm.Host.Tests.Support;

/// <summary>
/// What the stall and fault-injection process tests share: the machine (64 MiB, the built-in
/// dirtying guest), waits on the source's progress, and the check that after a fault the source
/// migrates to a fresh destination with memory that passes QEMU's <c>check_guests_ram</c> rule.
/// </summary>
public abstract class FaultFixture : VmFixture
{
    /// <summary>Guest RAM of every VM in these tests.</summary>
    protected const long Ram = 64L << 20;

    /// <summary>The machine options, with the built-in dirtying guest.</summary>
    protected static readonly string[] Machine = ["-M", "none", "-m", "64M", "-nodefaults", "-display", "none", "-guest", "dirty"];

    /// <summary>Sets migration capabilities on <paramref name="vm"/>.</summary>
    protected static Task SetCapabilitiesAsync(Vm vm, params string[] names) =>
        vm.ReturnOfAsync("migrate-set-capabilities", new()
        {
            ["capabilities"] = new JsonArray([.. names.Select(n => (JsonNode)new JsonObject { ["capability"] = n, ["state"] = true })]),
        });

    /// <summary>Waits until the incrementing guest has been once through its RAM, so every page has a value to check.</summary>
    protected async Task WaitForGuestToFillAsync(Vm vm)
    {
        var clock = Stopwatch.StartNew();
        while ((await vm.ReadRamAsync(Ram - GuestRam.PageSize, 1, Temp.File($"{vm.Name}-probe.img")))[0] == 0)
        {
            Assert.That(clock.Elapsed, Is.LessThan(Vm.LongWait), $"{vm.Name}: the guest never reached the end of RAM");
            await Task.Delay(50);
        }
    }

    /// <summary>The failed (or cancelled) end of a migration after a fault: the reason is there and the source runs.</summary>
    protected static async Task<JsonObject> AssertFailedAndRunningAsync(Vm source, string? errorContains = null, TimeSpan? timeout = null)
    {
        JsonObject end = await source.WaitForMigrationEndAsync(timeout ?? Vm.LongWait);
        Assert.Multiple(() =>
        {
            Assert.That(end["status"]?.GetValue<string>(), Is.AnyOf("failed", "cancelled"), end.ToJsonString());
            if (end["status"]?.GetValue<string>() == "failed")
            {
                Assert.That(end["error-desc"]?.GetValue<string>(), Is.Not.Null.And.Not.Empty, end.ToJsonString());
            }

            if (errorContains is not null)
            {
                Assert.That(end["error-desc"]?.GetValue<string>(), Does.Contain(errorContains), end.ToJsonString());
            }

        });

        // A failure after the VM stopped for the switchover is reported a moment before the
        // migration thread's clean-up has started the VM again (under the big lock), as for any
        // failure there: wait for the run state, within the long wait.
        await source.WaitForRunStateAsync("running");
        return end;
    }

    /// <summary>
    /// Migrates <paramref name="source"/> to <paramref name="destination"/> (listening at
    /// <paramref name="uri"/>) at full speed, then stops the destination and checks its RAM with
    /// QEMU migration-test's rule: nothing lost by the failed attempt before.
    /// </summary>
    protected async Task MigrateAndCheckConsistentAsync(Vm source, Vm destination, string uri)
    {
        await source.SetParametersAsync(new() { ["max-bandwidth"] = 1L << 30, ["downtime-limit"] = 30000 });
        await source.MigrateAsync(uri);
        JsonObject done = await source.WaitForCompletedAsync();
        await destination.WaitForCompletedAsync();
        await destination.WaitForRunStateAsync("running");
        await source.WaitForRunStateAsync("postmigrate");
        await destination.ReturnOfAsync("stop");
        await destination.WaitForRunStateAsync("paused");
        byte[] ram = await destination.ReadRamAsync(0, Ram, Temp.File($"{destination.Name}-ram.img"));
        string? problem = GuestRam.CheckIncrementingGuest(ram, out int steps);
        TestContext.Out.WriteLine($"{destination.Name}: {done.ToJsonString()}; {steps} step(s), {problem ?? "consistent"}");
        Assert.That(problem, Is.Null, $"{destination.Name}: the guest's memory is not one consistent instant of its loop");
    }
}
