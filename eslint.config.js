// ESLint (flat config): typescript-eslint's recommended rules over every TypeScript file. Type-aware
// rules are left out on purpose: `tsc --noEmit` (strict) already runs in `npm test`, and the
// syntactic rules keep the lint to seconds.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'data/', 'coverage/', 'dist/', 'web/dist/', 'test-results/', 'bench/results.*'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setImmediate: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        fetch: 'readonly',
        AbortSignal: 'readonly',
        TextEncoder: 'readonly',
      },
    },
    rules: {
      // `_name` marks a parameter or binding that is deliberately unused.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      // One logger: runtime code logs through pino (lib/log.ts); terminal output goes through lib/cli.ts.
      'no-console': 'error',
    },
  },
  { files: ['lib/cli.ts'], rules: { 'no-console': 'off' } },
);
