using System.Text;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.VMState;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Machine;

/// <summary>
/// The <c>globalstate</c> section (QEMU's migration/global_state.c): the source's run state,
/// stored just before the switchover stops the VM, so that the destination can enter the same
/// state (running, paused, prelaunch, ...) after loading. Wire format: be32 length of the name
/// plus its NUL, then a fixed 100-byte NUL-padded name.
/// </summary>
public sealed class GlobalState : ISaveStateDevice
{
    /// <summary>The fixed size of the run-state name buffer on the wire.</summary>
    public const int NameBufferSize = 100;

    private static readonly VMStateDescription<GlobalState> Description =
        VMStateDescription<GlobalState>.Build("globalstate", version: 1, minimumVersion: 1)
            .PreSave(state => state.PrepareForSave())
            .PostLoad((state, _) => state.AdoptReceived())
            .UInt32("size", state => ref state._size)
            .Buffer("runstate", state => state._name)
            .Done();

    private readonly VirtualMachine _vm;
    private readonly byte[] _name = new byte[NameBufferSize];
    private uint _size;
    private bool _stored;

    /// <summary>Creates the section for <paramref name="vm"/>.</summary>
    public GlobalState(VirtualMachine vm) => _vm = vm;

    /// <summary>The VMState description of the section.</summary>
    public static VMStateDescription<GlobalState> Vmsd => Description;

    /// <summary>The run state a loaded stream carried, or null if none was received since <see cref="ResetReceived"/>.</summary>
    public RunState? ReceivedState { get; private set; }

    /// <inheritdoc />
    public void Register(SaveStateRegistry registry) => registry.RegisterVMState(Description, this, instanceId: 0);

    /// <summary>Records the run state to send (QEMU's <c>global_state_store</c>); the switchover calls it before stopping the VM.</summary>
    public void Store(RunState state)
    {
        byte[] name = Encoding.ASCII.GetBytes(state.ToQapiName());
        Array.Clear(_name);
        name.CopyTo(_name, 0);
        _size = (uint)name.Length + 1;
        _stored = true;
    }

    /// <summary>Forgets a received state before a new incoming migration.</summary>
    public void ResetReceived() => ReceivedState = null;

    private void PrepareForSave()
    {
        if (!_stored)
        {
            Store(_vm.State);
        }
    }

    private void AdoptReceived()
    {
        _name[^1] = 0;
        int length = Array.IndexOf(_name, (byte)0);
        string name = Encoding.ASCII.GetString(_name, 0, length < 0 ? _name.Length : length);
        if (!RunStateNames.TryParse(name, out RunState state))
        {
            throw new InvalidDataException($"globalstate: '{name}' is not a run state");
        }

        ReceivedState = state;
        _stored = false;
    }
}
