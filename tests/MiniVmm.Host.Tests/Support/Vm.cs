using System.Diagnostics;
using System.Text.Json.Nodes;

namespace MiniVmm.Host.Tests.Support;

/// <summary>Which program a <see cref="Vm"/> runs.</summary>
public enum VmProgram
{
    /// <summary><c>minivmm run</c>.</summary>
    MiniVmm,

    /// <summary><c>qemu-system-x86_64</c> (QEMU 7.2).</summary>
    Qemu,
}

/// <summary>
/// A VM process (MiniVmm or QEMU, started with the same arguments) and a negotiated QMP
/// client on its socket; disposing closes the client and kills the process if it still runs.
/// </summary>
public sealed class Vm : IAsyncDisposable
{
    /// <summary>The longest a migration or run-state wait lasts before the test fails (waits, not assertions).</summary>
    public static readonly TimeSpan LongWait = TimeSpan.FromSeconds(120);

    private Vm(VmProgram program, IVmProcess process, QmpClient qmp, string name)
    {
        Program = program;
        Process = process;
        Qmp = qmp;
        Name = name;
    }

    /// <summary>The program.</summary>
    public VmProgram Program { get; }

    /// <summary>The process.</summary>
    public IVmProcess Process { get; }

    /// <summary>The QMP client.</summary>
    public QmpClient Qmp { get; }

    /// <summary>A name for messages (e.g. "source").</summary>
    public string Name { get; }

    /// <summary>Starts <paramref name="program"/> with <paramref name="arguments"/> and a QMP socket in <paramref name="directory"/>.</summary>
    public static Task<Vm> StartAsync(VmProgram program, TemporaryDirectory directory, string name, params string[] arguments) =>
        StartAsync(program, directory, name, arguments, beforeQmp: null);

    /// <summary>Starts <c>minivmm run</c> in the network namespace <paramref name="networkNamespace"/>, its QMP socket in <paramref name="directory"/>.</summary>
    public static async Task<Vm> StartInNamespaceAsync(
        string networkNamespace, TemporaryDirectory directory, string name, string[] arguments, Func<IVmProcess, Task>? beforeQmp = null)
    {
        string socket = directory.File(name + ".qmp");
        MiniVmmProcess process = await MiniVmmProcess.StartWithQmpInNamespaceAsync(networkNamespace, socket, arguments);
        try
        {
            if (beforeQmp is not null)
            {
                await beforeQmp(process);
            }

            QmpClient qmp = await QmpClient.ConnectAndNegotiateAsync(socket);
            return new Vm(VmProgram.MiniVmm, process, qmp, name);
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Starts <paramref name="program"/> like <see cref="StartAsync(VmProgram, TemporaryDirectory, string, string[])"/>,
    /// running <paramref name="beforeQmp"/> once the process is up and before QMP is negotiated
    /// (e.g. to connect a guest harness the VM waits for before it starts).
    /// </summary>
    public static async Task<Vm> StartAsync(
        VmProgram program, TemporaryDirectory directory, string name, string[] arguments, Func<IVmProcess, Task>? beforeQmp)
    {
        string socket = directory.File(name + ".qmp");
        IVmProcess process = program == VmProgram.Qemu
            ? await QemuProcess.StartWithQmpAsync(socket, arguments)
            : await MiniVmmProcess.StartWithQmpAsync(socket, arguments);
        try
        {
            if (beforeQmp is not null)
            {
                await beforeQmp(process);
            }

            QmpClient qmp = await QmpClient.ConnectAndNegotiateAsync(socket);
            return new Vm(program, process, qmp, name);
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs a command and returns its <c>return</c> member, failing the test on an error reply.</summary>
    public async Task<JsonNode?> ReturnOfAsync(string command, JsonObject? arguments = null, TimeSpan? timeout = null)
    {
        JsonObject reply = await Qmp.ExecuteAsync(command, arguments, timeout: timeout);
        if (reply["error"] is { } error)
        {
            throw new AssertionException($"{Name} ({Program}): {command} failed: {error.ToJsonString()}; stderr:\n{Process.Stderr}");
        }

        return reply["return"];
    }

    /// <summary>The run state (<c>query-status</c>).</summary>
    public async Task<string?> RunStateAsync() => (await ReturnOfAsync("query-status"))?["status"]?.GetValue<string>();

    /// <summary>The migration status (<c>query-migrate</c>), null before any migration.</summary>
    public async Task<JsonObject> QueryMigrateAsync() => (await ReturnOfAsync("query-migrate"))?.AsObject() ?? [];

    /// <summary>Waits until the run state is <paramref name="expected"/>.</summary>
    public Task WaitForRunStateAsync(string expected) => Qmp.WaitForRunStateAsync(expected, LongWait);

    /// <summary>Waits until the migration has ended (completed, failed or cancelled) and returns query-migrate.</summary>
    public async Task<JsonObject> WaitForMigrationEndAsync(TimeSpan? timeout = null)
    {
        try
        {
            return await Qmp.WaitForMigrationEndAsync(timeout ?? LongWait);
        }
        catch (Exception error) when (error is AssertionException or IOException or TimeoutException)
        {
            throw new AssertionException($"{Name} ({Program}): {error.Message}; exited: {Process.HasExited}; stderr:\n{Process.Stderr}", error);
        }
    }

    /// <summary>Waits until the migration finished as <c>completed</c> and returns query-migrate.</summary>
    public async Task<JsonObject> WaitForCompletedAsync(TimeSpan? timeout = null)
    {
        JsonObject info = await WaitForMigrationEndAsync(timeout);
        Assert.That(info["status"]?.GetValue<string>(), Is.EqualTo("completed"),
            $"{Name} ({Program}) query-migrate: {info.ToJsonString()}; stderr:\n{Process.Stderr}");
        return info;
    }

    /// <summary>Polls query-migrate until the status is <paramref name="status"/>; fails if the migration ends first.</summary>
    public async Task<JsonObject> WaitForMigrationStatusAsync(string status, TimeSpan? timeout = null)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            JsonObject info = await QueryMigrateAsync();
            string? now = info["status"]?.GetValue<string>();
            if (now == status)
            {
                return info;
            }

            if (now is "completed" or "failed" or "cancelled" || clock.Elapsed > (timeout ?? LongWait))
            {
                throw new AssertionException($"{Name} ({Program}): migration status never became '{status}'; last: {info.ToJsonString()}");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>Waits until this source has sent <paramref name="bytes"/> of RAM (status setup or active meanwhile).</summary>
    public async Task WaitForTransferredAsync(long bytes)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            JsonObject info = await QueryMigrateAsync();
            Assert.That(info["status"]?.GetValue<string>(), Is.AnyOf("setup", "active"), info.ToJsonString());
            if (info["ram"]?["transferred"]?.GetValue<long>() >= bytes)
            {
                return;
            }

            Assert.That(clock.Elapsed, Is.LessThan(LongWait), $"{Name}: fewer than {bytes} bytes transferred: {info.ToJsonString()}");
            await Task.Delay(20);
        }
    }

    /// <summary>Waits until the destination's listener is up (<c>inmigrate</c>; QMP commands run after the machine set up <c>-incoming</c>).</summary>
    public Task WaitUntilListeningAsync() => WaitForRunStateAsync("inmigrate");

    /// <summary><c>pmemsave</c> of [<paramref name="address"/>, +<paramref name="size"/>) into <paramref name="file"/>.</summary>
    public async Task PmemsaveAsync(long address, long size, string file) =>
        await ReturnOfAsync("pmemsave", new() { ["val"] = address, ["size"] = size, ["filename"] = file }, TimeSpan.FromSeconds(90));

    /// <summary><c>pmemsave</c> into <paramref name="file"/> and returns its bytes.</summary>
    public async Task<byte[]> ReadRamAsync(long address, long size, string file)
    {
        await PmemsaveAsync(address, size, file);
        byte[] bytes = await File.ReadAllBytesAsync(file);
        File.Delete(file);
        return bytes;
    }

    /// <summary>Sets migration parameters (e.g. max-bandwidth, downtime-limit).</summary>
    public Task SetParametersAsync(JsonObject parameters) => ReturnOfAsync("migrate-set-parameters", parameters);

    /// <summary>Starts an outgoing migration.</summary>
    public Task MigrateAsync(string uri) => ReturnOfAsync("migrate", new() { ["uri"] = uri });

    /// <summary>Sends <c>quit</c> and waits for the process to exit; returns the exit code.</summary>
    public async Task<int> QuitAsync()
    {
        JsonObject reply = await Qmp.ExecuteAsync("quit");
        Assert.That(reply.ContainsKey("return"), Is.True, $"{Name} quit: {reply.ToJsonString()}");
        return await Process.WaitForExitAsync();
    }

    private int _disposed;

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await Qmp.DisposeAsync();
        await Process.DisposeAsync();
    }
}
