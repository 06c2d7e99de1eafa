using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using MiniVmm.Migration.Control;
using MiniVmm.Migration.Machine;
using MiniVmm.Migration.Ram;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Transport.Tls;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Tests.Multifd;

/// <summary>A <c>-M none</c> VM built as the host builds it, with its coordinator, for multifd migrations over real sockets.</summary>
internal sealed class MultifdNode : IDisposable
{
    private readonly ServiceProvider _provider;
    private readonly List<TlsCredentialsX509> _credentials = [];

    private MultifdNode(long ramSize, RunState initial)
    {
        var services = new ServiceCollection();
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(new VirtualMachine(TimeProvider.System, initial));
        services.AddMachineNone(ramSize);
        _provider = services.BuildServiceProvider();
        Vm = _provider.GetRequiredService<VirtualMachine>();
        Memory = _provider.GetRequiredService<GuestMemory>();
        Coordinator = new MigrationCoordinator(
            _provider.GetRequiredService<SaveStateRegistry>(),
            Vm,
            _provider.GetRequiredService<SavevmOptions>(),
            _provider.GetRequiredService<GlobalState>(),
            _provider.GetRequiredService<IRamTransferStatistics>())
        {
            TlsCredentials = id => _credentials.FirstOrDefault(c => c.Id == id),
        };
    }

    public VirtualMachine Vm { get; }

    public GuestMemory Memory { get; }

    public MigrationCoordinator Coordinator { get; }

    /// <summary>A running VM whose first <paramref name="dataBytes"/> of RAM hold random data (every page non-zero), some zero pages among them.</summary>
    public static MultifdNode RunningSource(long ramSize, long dataBytes, int seed = 7)
    {
        var node = new MultifdNode(ramSize, RunState.Prelaunch);
        byte[] data = new byte[dataBytes];
        new Random(seed).NextBytes(data);
        for (int page = 0; page < data.Length; page += 4096)
        {
            data[page] = (byte)(1 + (page / 4096 % 255));
        }

        data.AsSpan(5 * 4096, 3 * 4096).Clear();
        node.Memory.Write(0, data);
        node.Memory.Write(ramSize - 4096, data.AsSpan(0, 4096));
        using (node.Vm.Bql.Acquire())
        {
            node.Vm.Start().ThrowIfFailed();
        }

        return node;
    }

    /// <summary>A VM waiting in <c>inmigrate</c>.</summary>
    public static MultifdNode Destination(long ramSize) => new(ramSize, RunState.InMigrate);

    /// <summary>Turns multifd on with <paramref name="channels"/> channels (and unlimited bandwidth).</summary>
    public MultifdNode WithMultifd(int channels, bool enabled = true)
    {
        using (Vm.Bql.Acquire())
        {
            Coordinator.SetCapabilities([(MigrationCapabilities.Multifd, enabled)]);
            Coordinator.SetParameters(new JsonObject { ["multifd-channels"] = (long)channels, ["max-bandwidth"] = 0L });
        }

        return this;
    }

    /// <summary>Adds <c>tls-creds</c> object <paramref name="id"/> from <paramref name="directory"/> and sets the parameter.</summary>
    public MultifdNode WithTls(string id, string directory, TlsEndpoint endpoint)
    {
        _credentials.Add(TlsCredentialsX509.Load(id, directory, endpoint, verifyPeer: false));
        using (Vm.Bql.Acquire())
        {
            Coordinator.SetParameters(new JsonObject { ["tls-creds"] = id, ["tls-hostname"] = "localhost" });
        }

        return this;
    }

    public IncomingMigration Listen(string uri)
    {
        using (Vm.Bql.Acquire())
        {
            return Coordinator.StartIncoming(uri);
        }
    }

    public MigrationSession Migrate(string uri)
    {
        using (Vm.Bql.Acquire())
        {
            return Coordinator.StartOutgoing(uri);
        }
    }

    public byte[] ReadAllRam()
    {
        byte[] image = new byte[Memory.TotalBytes];
        Memory.Read(0, image);
        return image;
    }

    /// <summary>A TCP port free a moment ago on 127.0.0.1.</summary>
    public static int FreePort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    public void Dispose()
    {
        Coordinator.Dispose();
        foreach (TlsCredentialsX509 credentials in _credentials)
        {
            credentials.Dispose();
        }

        _provider.Dispose();
    }
}
