using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using MiniVmm.Devices.Models;
using MiniVmm.Migration.Control;
using MiniVmm.Migration.Ram;
using MiniVmm.Migration.Savevm;
using MiniVmm.Runstate;
using MiniVmm.Vfio;
using MiniVmm.Vfio.Migration;

namespace MiniVmm.Host.Devices;

/// <summary>
/// <c>-device vfio-emu,id=ID[,p2p=on|off][,precopy=on|off][,state-size=MiB]</c>: an emulated
/// VFIO device (a DMA engine with internal state that writes into a window of guest RAM below
/// 1 MiB while running) with QEMU's VFIO migration handler.
/// </summary>
public sealed class VfioEmuDevice : ISaveStateDevice, IDeviceIntrospection, IDisposable
{
    /// <summary>Each device's DMA window: 128 KiB slots from 128 KiB up, below the dirtying guest's first MiB.</summary>
    public const ulong WindowSize = 128 * 1024;

    private readonly DmaEngineDevice _engine;

    /// <summary>Builds the device from its <c>-device</c> properties; its index among the vfio-emu devices picks its DMA window.</summary>
    public VfioEmuDevice(
        [DeviceProperty("id", Description = "the device's id")] string id,
        DeviceContext context,
        GuestMemory? memory,
        VirtualMachine vm,
        ISwitchoverAck switchoverAck,
        ILogger<VfioEmuDevice> logger,
        [DeviceProperty("p2p", Description = "the device supports the P2P states (RUNNING_P2P, PRE_COPY_P2P)")] bool p2p = true,
        [DeviceProperty("precopy", Description = "the device supports PRE_COPY (state sent while it runs)")] bool precopy = true,
        [DeviceProperty("state-size", Description = "MiB of internal state, 1..2047")] ulong sizeMiB = 4,
        [DeviceProperty("seed", Description = "seeds the state (default: from the id)")] ulong? seed = null,
        [DeviceProperty("x-fail", Description = "fault injection: 'stop-copy' makes every arc into STOP_COPY fail")] string? fail = null)
    {
        Id = id;
        int index = context.Index;
        if (memory is null)
        {
            throw context.Error("the machine has no RAM (use -m)");
        }

        if (fail is not (null or "stop-copy"))
        {
            throw context.Error("x-fail must be stop-copy");
        }

        if (sizeMiB is < 1 or > 2047)
        {
            throw context.Error("state-size must be 1..2047 MiB");
        }

        ulong start = WindowSize * (ulong)(index + 1);
        if (start + WindowSize > Math.Min(1UL << 20, (ulong)memory.TotalBytes))
        {
            throw context.Error($"no DMA window left below 1 MiB of RAM for device #{index}");
        }

        _engine = new DmaEngineDevice(new GuestMemoryDma(memory), new DmaEngineOptions
        {
            StateSizeMiB = (int)sizeMiB,
            SupportsP2P = p2p,
            SupportsPreCopy = precopy,
            DmaWindowStart = start,
            DmaWindowLength = WindowSize,
            Seed = seed ?? StableHash(Id),
            Name = Id,
            FailStopCopy = fail == "stop-copy",
        });
        var config = new VfioDeviceConfig();
        new Random(Id.Length * 7919).NextBytes(config.Space);
        Handler = new VfioMigrationHandler(
            _engine, Id, vm, config, memory,
            switchoverAck, logger);
    }

    /// <summary>The device id.</summary>
    public string Id { get; }

    /// <summary>The device's migration handler.</summary>
    public VfioMigrationHandler Handler { get; }

    /// <inheritdoc />
    public void Register(SaveStateRegistry registry) => Handler.Register(registry);

    /// <summary>The device's own view for <c>x-query-device</c>: VFIO states, state digests, transfer count.</summary>
    public JsonObject Describe() => new()
    {
        ["id"] = Id,
        ["flags"] = Handler.Flags.ToString(),
        ["device-state"] = Handler.CachedState.ToQapiName(),
        ["kernel-state"] = _engine.GetState().ToQapiName(),
        ["state-size"] = _engine.StateSize,
        ["operations"] = _engine.OperationCount,
        ["digest"] = Convert.ToHexString(_engine.StateDigest()),
        ["loaded-digest"] = _engine.LoadedStateDigest is { } loaded ? Convert.ToHexString(loaded) : null,
        ["bytes-transferred"] = Handler.BytesTransferred,
    };

    /// <inheritdoc />
    public void Dispose()
    {
        Handler.Dispose();
        _engine.Dispose();
    }

    private static ulong StableHash(string text)
    {
        ulong hash = 0xcbf29ce484222325;
        foreach (char c in text)
        {
            hash = (hash ^ c) * 0x100000001b3;
        }

        return hash;
    }
}
