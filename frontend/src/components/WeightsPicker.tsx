// "Start from weights": a .safetensors file or a .pt state_dict the next run is initialized from.
// The backend reads and checks it (names and shapes against the graph); this only picks the file.
import { training, useTraining } from '../state/trainingStore';

export function WeightsPicker() {
  const weights = useTraining((s) => s.initWeights);
  return (
    <div data-testid="weights-picker">
      <label>
        Start from weights (.safetensors or .pt){' '}
        <input
          type="file"
          accept=".safetensors,.pt,.pth"
          aria-label="Start from weights (.safetensors or .pt)"
          onChange={(e) => void training.setInitWeights(e.currentTarget.files?.[0] ?? null)}
        />
      </label>
      {weights && (
        <div className="muted" data-testid="weights-chosen">
          {weights.filename}: {weights.tensors} tensors{' '}
          <button type="button" onClick={() => void training.setInitWeights(null)}>
            Clear
          </button>
        </div>
      )}
    </div>
  );
}
