using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using MiniVmm.Host.CommandLine;
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
public sealed class VfioEmuDevice : ISaveStateDevice, IDisposable
{
    /// <summary>Each device's DMA window: 128 KiB slots from 128 KiB up, below the dirtying guest's first MiB.</summary>
    public const ulong WindowSize = 128 * 1024;

    private readonly DmaEngineDevice _engine;

    /// <summary>Builds the device from its <c>-device</c> option; <paramref name="index"/> picks its DMA window.</summary>
    public VfioEmuDevice(DeviceSpec spec, int index, GuestMemory memory, VirtualMachine vm, ISwitchoverAck switchoverAck, ILogger logger)
    {
        spec.CheckKnown("id", "p2p", "precopy", "state-size", "seed", "x-fail");
        Id = spec.Require("id");
        bool p2p = Switch(spec, "p2p");
        bool precopy = Switch(spec, "precopy");
        ulong sizeMiB = spec.GetNumber("state-size", 4);
        string? fail = spec.Get("x-fail");
        if (fail is not (null or "stop-copy"))
        {
            throw new InvalidCommandLineException($"-device {spec.Text}: x-fail must be stop-copy");
        }

        if (sizeMiB is < 1 or > 2047)
        {
            throw new InvalidCommandLineException($"-device {spec.Text}: state-size must be 1..2047 MiB");
        }

        ulong start = WindowSize * (ulong)(index + 1);
        if (start + WindowSize > Math.Min(1UL << 20, (ulong)memory.TotalBytes))
        {
            throw new InvalidCommandLineException($"-device {spec.Text}: no DMA window left below 1 MiB of RAM for device #{index}");
        }

        _engine = new DmaEngineDevice(new GuestMemoryDma(memory), new DmaEngineOptions
        {
            StateSizeMiB = (int)sizeMiB,
            SupportsP2P = p2p,
            SupportsPreCopy = precopy,
            DmaWindowStart = start,
            DmaWindowLength = WindowSize,
            Seed = spec.GetNumber("seed", StableHash(Id)),
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

    /// <summary>The device as <c>x-query-vfio</c> reports it.</summary>
    public JsonObject ToJson() => new()
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

    private static bool Switch(DeviceSpec spec, string name) => spec.Get(name) switch
    {
        null or "on" or "true" or "yes" => true,
        "off" or "false" or "no" => false,
        string other => throw new InvalidCommandLineException($"-device {spec.Text}: Parameter '{name}' expects 'on' or 'off', not '{other}'"),
    };
}
