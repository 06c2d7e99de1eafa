using NUnit.Framework.Interfaces;

namespace MiniVmm.Host.Tests.Support;

/// <summary>
/// A base for end-to-end fixtures that start several <see cref="Vm"/>s per test: a fresh
/// <see cref="Temp"/> directory for each test, and every VM started through
/// <see cref="StartAsync(VmProgram, string, string[])"/> disposed in TearDown (killed if it still
/// runs), after which the directory is removed.
/// </summary>
public abstract class VmFixture
{
    private readonly List<Vm> _vms = [];

    /// <summary>The test's temporary directory (QMP sockets, images, streams).</summary>
    protected TemporaryDirectory Temp { get; private set; } = null!;

    /// <summary>Creates <see cref="Temp"/>; runs before any SetUp of the derived fixture.</summary>
    [SetUp]
    public void CreateDirectory() => Temp = new TemporaryDirectory();

    /// <summary>Disposes the VMs the test started and removes <see cref="Temp"/>.</summary>
    [TearDown]
    public async Task KillLeftoversAndRemoveDirectory()
    {
        bool failed = TestContext.CurrentContext.Result.Outcome.Status == TestStatus.Failed;
        foreach (Vm vm in _vms)
        {
            if (failed)
            {
                // Every side's log: a failure on one side is often explained by the other's.
                TestContext.Out.WriteLine($"--- {vm.Name} ({vm.Program}) stderr:\n{vm.Process.Stderr}");
            }

            await vm.DisposeAsync();
        }

        _vms.Clear();
        Temp.Dispose();
    }

    /// <summary>Starts <paramref name="program"/> as <paramref name="name"/> with a QMP socket in <see cref="Temp"/>; disposed in TearDown.</summary>
    protected async Task<Vm> StartAsync(VmProgram program, string name, params string[] arguments)
    {
        Vm vm = await Vm.StartAsync(program, Temp, name, arguments);
        _vms.Add(vm);
        return vm;
    }

    /// <summary>
    /// Starts <c>minivmm run</c> as <paramref name="name"/>, runs <paramref name="beforeQmp"/>
    /// before QMP is negotiated; disposed in TearDown.
    /// </summary>
    protected async Task<Vm> StartAsync(string name, string[] arguments, Func<IVmProcess, Task> beforeQmp)
    {
        Vm vm = await Vm.StartAsync(VmProgram.MiniVmm, Temp, name, arguments, beforeQmp);
        _vms.Add(vm);
        return vm;
    }

    /// <summary>Starts <c>minivmm run</c> as <paramref name="name"/> in a network namespace; disposed in TearDown.</summary>
    protected Task<Vm> StartInNamespaceAsync(string networkNamespace, string name, params string[] arguments) =>
        StartInNamespaceAsync(networkNamespace, name, arguments, beforeQmp: null);

    /// <summary>
    /// Starts <c>minivmm run</c> as <paramref name="name"/> in a network namespace, runs
    /// <paramref name="beforeQmp"/> before QMP is negotiated; disposed in TearDown.
    /// </summary>
    protected async Task<Vm> StartInNamespaceAsync(string networkNamespace, string name, string[] arguments, Func<IVmProcess, Task>? beforeQmp)
    {
        Vm vm = await Vm.StartInNamespaceAsync(networkNamespace, Temp, name, arguments, beforeQmp);
        _vms.Add(vm);
        return vm;
    }

    /// <summary>Starts <c>minivmm run</c> as <paramref name="name"/>; disposed in TearDown.</summary>
    protected Task<Vm> StartAsync(string name, params string[] arguments) => StartAsync(VmProgram.MiniVmm, name, arguments);
}
